# The two commands of the README: `make demo` and `make test`. Each sets up what it needs.
VENV := .venv
READY := $(VENV)/.headstart-ready

.PHONY: demo test test-fast clean-cache

$(READY): pyproject.toml constraints.txt scripts/setup.sh
	bash scripts/setup.sh
	touch $(READY)

# 60 labeled tickets (12 a queue) to train on, 400 tickets worded the ways customers write to test on
# (examples/make_support_tickets.py writes both); a probe, so it takes seconds after the set-up.
demo: $(READY)
	$(VENV)/bin/headstart fit examples/support_tickets.csv --test examples/support_tickets_test.csv \
	  --mode probe --out runs/support_tickets
	$(VENV)/bin/headstart predict runs/support_tickets examples/new_tickets.csv --out runs/new_tickets_predictions.csv
	@echo "open runs/support_tickets/report.html; predictions in runs/new_tickets_predictions.csv"

test: $(READY)
	$(VENV)/bin/python -m pytest tests -q

# The unit tests only, in about a minute: no packaged models or shared data (integration), and no
# processes, servers or browsers of their own (tests/conftest.py marks those). Temporary files go to
# tmpfs where there is one (TMPDIR wins): the tests' SQLite commits and the removal of old temporary
# folders otherwise wait on the disk; one old folder is kept there, not three, to spare memory.
test-fast: $(READY)
	TMPDIR="$${TMPDIR:-$$(test -d /dev/shm && echo /dev/shm || echo /tmp)}" \
	$(VENV)/bin/python -m pytest tests -q -o tmp_path_retention_count=1 \
	  -m "not integration and not subprocess and not server and not browser"

clean-cache:
	rm -rf $${HEADSTART_CACHE:-$$HOME/.cache/headstart}
