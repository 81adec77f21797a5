// The review page without page reloads: each entry's forms are sent to the JSON API and the entry
// leaves the page; keys act on the selected entry (the forms still work without this script).
(function () {
  "use strict";
  const csrf = document.querySelector('meta[name="csrf"]').content;
  const classes = Array.from(document.querySelector(".entry select[name=label]")?.options || [], (o) => o.value);
  const status = document.getElementById("review-status");
  let selected = 0;

  const entries = () => Array.from(document.querySelectorAll(".entry"));

  function say(text, bad) {
    status.hidden = false; status.textContent = text;
    status.className = bad ? "message error" : "message";
  }

  function select(index) {
    const all = entries();
    if (!all.length) return;
    selected = Math.max(0, Math.min(index, all.length - 1));
    all.forEach((entry, i) => entry.classList.toggle("selected", i === selected));
    all[selected].scrollIntoView({ block: "nearest" });
  }

  async function resolve(entry, action, label) {
    const comment = (entry.querySelector("input[name=comment]")?.value || "").trim();
    const body = action === "relabel" ? { action, label, comment } : { action };
    const response = await fetch(`/api/review/${entry.dataset.review}`, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf }, body: JSON.stringify(body),
    });
    const data = await response.json().catch(() => ({ detail: response.statusText }));
    if (!response.ok) { say(`Not done: ${data.detail || response.statusText}`, true); return; }
    const index = entries().indexOf(entry);
    entry.remove();
    const left = entries().length;
    document.getElementById("open-count").textContent = String(left);
    document.getElementById("review-empty").hidden = left > 0;
    say(action === "relabel" ? `relabeled '${data.id}' as ${label}` : `kept the labels of '${data.id}'`);
    select(index);
  }

  for (const form of document.querySelectorAll(".entry form")) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const entry = form.closest(".entry");
      select(entries().indexOf(entry));
      resolve(entry, form.elements.action.value, form.elements.label ? form.elements.label.value : null);
    });
  }
  for (const entry of entries()) entry.addEventListener("click", () => select(entries().indexOf(entry)));

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const field = event.target.closest("input, select, textarea");
    if (field) {  // Enter or Escape in a comment field hands the keys back
      if (field.name === "comment" && (event.key === "Enter" || event.key === "Escape")) { event.preventDefault(); field.blur(); }
      return;
    }
    const entry = entries()[selected];
    if (event.key === "ArrowDown" || event.key === "j") { event.preventDefault(); select(selected + 1); }
    else if (event.key === "ArrowUp") { event.preventDefault(); select(selected - 1); }
    else if (!entry) return;
    else if (event.key === "Enter" && entry.dataset.suggested) { event.preventDefault(); resolve(entry, "relabel", entry.dataset.suggested); }
    else if (/^[0-9]$/.test(event.key)) {
      const index = event.key === "0" ? 9 : parseInt(event.key, 10) - 1;
      if (index < classes.length) { event.preventDefault(); resolve(entry, "relabel", classes[index]); }
    } else if (event.key === "k" || event.key === "K") { event.preventDefault(); resolve(entry, "keep", null); }
    else if (event.key === "c" || event.key === "C") { event.preventDefault(); entry.querySelector("input[name=comment]")?.focus(); }
  });
  select(0);
})();
