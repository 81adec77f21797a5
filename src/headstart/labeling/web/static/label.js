// The labeling page: one item at a time from a prefetched buffer, labels posted in order.
// The next item is drawn from the buffer as soon as a key is pressed (no round trip in between);
// labels are posted one after another, so an undo always follows the label it undoes.
(function () {
  "use strict";
  // the label buttons carry the classes: the page has no inline script (its Content-Security-Policy allows none)
  const classes = Array.from(document.querySelectorAll(".label"), (button) => button.dataset.label);
  const csrf = document.querySelector('meta[name="csrf"]').content;
  const $ = (id) => document.getElementById(id);
  const state = { buffer: [], current: null, session: 0, target: 50, chain: Promise.resolve(), fetching: null, done: false };
  // keydown -> next item painted, in ms; read by the end-to-end tests (never shown: annotators need not see it)
  window.headstartTimings = [];

  let sent = 0, shown = 0;  // request numbers: progress from an older request never overwrites a newer one
  async function call(path, body) {
    const number = ++sent;
    const response = await fetch(path, {
      method: body === undefined ? "GET" : "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = await response.json().catch(() => ({ detail: response.statusText }));
    if (!response.ok) { const error = new Error(data.detail || response.statusText); error.status = response.status; throw error; }
    const timing = /dur=([\d.]+)/.exec(response.headers.get("Server-Timing") || "");
    if (data.progress && number > shown) { shown = number; setProject(data.progress); }
    return { data, serverMs: timing ? parseFloat(timing[1]) : null };
  }

  function say(text, bad) { $("status").textContent = text; $("status").className = bad ? "status error" : "status"; }

  function setProject(progress) {
    $("project-bar").max = Math.max(progress.items, 1); $("project-bar").value = progress.labeled_items;
    $("project-text").textContent = `${progress.labeled_items} / ${progress.items} items`;
  }

  function setSession() {
    while (state.session >= state.target) state.target += 50;
    $("session-bar").max = state.target; $("session-bar").value = state.session;
    $("session-text").textContent = `${state.session} / ${state.target}`;
  }

  function refill(restart) {
    if (state.fetching) return state.fetching;
    const held = new Set(state.buffer.map((item) => item.id).concat(state.current ? [state.current.id] : []));
    state.fetching = call(`/api/next?n=10${restart ? "&restart=true" : ""}`).then(({ data }) => {
      for (const item of data.items) {
        if (held.has(item.id)) continue;
        state.buffer.push(item);
        if (item.media) new Image().src = item.media;  // the image is in the browser's cache before it is shown
      }
      state.done = data.items.length === 0;
    }).catch((error) => say(`Could not fetch items: ${error.message}`, true)).finally(() => { state.fetching = null; });
    return state.fetching;
  }

  function render() {
    const item = state.current;
    $("empty").hidden = !!item || !state.done;
    $("item-id").textContent = item ? `item ${item.id}` : "";
    $("item-reason").textContent = item ? item.reason : "";
    $("item-text").textContent = item && item.text !== null ? item.text : "";
    $("item-image").hidden = !(item && item.media);
    if (item && item.media) { $("item-image").src = item.media; $("item-image").alt = `item ${item.id}`; }
    $("suggest-label").textContent = item && item.suggestion ? `${item.suggestion} (${(item.confidence * 100).toFixed(0)}%)` : "none yet";
    $("top3").replaceChildren(...(item ? item.top : []).map((guess) => {
      const li = document.createElement("li");
      const bar = document.createElement("span"); bar.className = "bar-p";
      const fill = document.createElement("i"); fill.style.width = `${Math.round(guess.p * 100)}%`; bar.append(fill);
      li.append(`${guess.label}`, bar, `${(guess.p * 100).toFixed(0)}%`);
      return li;
    }));
    for (const button of document.querySelectorAll(".label")) {
      button.classList.toggle("suggested", !!item && button.dataset.label === item.suggestion);
      button.disabled = !item;
    }
    // "Enter accepts" only when there is something to accept
    for (const hint of document.querySelectorAll(".enter-hint")) hint.hidden = !(item && item.suggestion);
  }

  function timed(began) {
    // two animation frames: the new item has been laid out and painted
    requestAnimationFrame(() => requestAnimationFrame(() => {
      window.headstartTimings.push(performance.now() - began);
    }));
  }

  async function advance(began) {
    if (!state.buffer.length) await refill(false);
    state.current = state.buffer.shift() || null;
    render();
    if (began !== undefined) timed(began);
    if (state.buffer.length < 5) refill(false);  // keep a few items ahead, even for a fast hand
  }

  function label(name, began) {
    const item = state.current;
    if (!item || !name) return;
    const comment = $("comment").value.trim();
    $("comment").value = "";
    const body = comment ? { id: item.id, label: name, comment } : { id: item.id, label: name };
    state.chain = state.chain.then(() => call("/api/labels", body)).then(() => {
      state.session += 1; setSession();
      say(`Saved ${item.id} as ${name}` + (comment ? " with your comment" : ""));
    }).catch((error) => {
      say(`Not saved: ${item.id} as ${name}: ${error.message}`, true);
      if (error.status !== 409 && error.status !== 400) state.buffer.unshift(item);  // try it again later
    });
    advance(began);
  }

  function undo(began) {
    state.chain = state.chain.then(() => call("/api/undo", {})).then(({ data }) => {
      if (!data.undone) { say("Nothing to undo"); return; }
      if (state.current) state.buffer.unshift(state.current);
      state.current = data.item; state.session = Math.max(0, state.session - 1);
      setSession(); render(); timed(began);
      say(`Undid ${data.undone.id} (${data.undone.label})`);
    }).catch((error) => say(`Could not undo: ${error.message}`, true));
  }

  function skip(began) {
    const item = state.current;
    if (!item) return;
    state.chain = state.chain.then(() => call("/api/skip", { id: item.id })).then(() => say(`Skipped ${item.id}`))
      .catch((error) => say(`Could not skip: ${error.message}`, true));
    advance(began);
  }

  // in the comment field, Enter or Escape hands the keys back to labeling (the comment goes with the next label)
  $("comment").addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === "Escape") { event.preventDefault(); $("comment").blur(); }
  });

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.target.closest("input, select, textarea")) return;
    const began = performance.now();
    if (/^[0-9]$/.test(event.key)) {
      const index = event.key === "0" ? 9 : parseInt(event.key, 10) - 1;
      if (index < classes.length) { event.preventDefault(); label(classes[index], began); }
    } else if (event.key === "Enter") {
      event.preventDefault(); if (state.current) label(state.current.suggestion, began);
    } else if (event.key === "Backspace") {
      event.preventDefault(); undo(began);
    } else if (event.key === "s" || event.key === "S") {
      event.preventDefault(); skip(began);
    } else if (event.key === "c" || event.key === "C") {
      event.preventDefault(); $("comment").focus();
    } else if ((event.key === "g" || event.key === "G") && $("guidelines")) {
      event.preventDefault(); $("guidelines").open = !$("guidelines").open;
    }
  });
  for (const button of document.querySelectorAll(".label")) {
    // blur: a focused button would take the next Space or Enter as another click
    button.addEventListener("click", () => { button.blur(); label(button.dataset.label, performance.now()); });
  }

  setSession();
  refill(true).then(() => advance());
})();
