# Sourced by scripts/*: make sure the venv exists and holds what the calling script needs.
#   HIP3_NEEDS=run  (scripts/run)  the project and its runtime dependencies only
#   HIP3_NEEDS=test (scripts/test) also the test tools and the official SDK used as a reference
# Versions come from requirements.lock (pip constraints: the versions the suite last passed with), so
# a fresh machine installs the same ones. Re-installs when pyproject.toml or requirements.lock is newer
# than the last install, or when the venv holds less than asked for. A venv that already has the test
# extras keeps them when re-installed by scripts/run (so pip never finds the SDK's pins half-satisfied).
VENV="${HIP3_VENV:-$PWD/.venv}"
needs="${HIP3_NEEDS:-test}"
stamp="$VENV/.hip3-installed"
if [ ! -x "$VENV/bin/python" ]; then
  echo "creating $VENV" >&2
  python3 -m venv "$VENV"
fi
have=""
if [ -f "$stamp" ]; then
  have="$(cat "$stamp")"
  [ -n "$have" ] || have=test  # a stamp from before the split held everything
  if [ pyproject.toml -nt "$stamp" ] || [ requirements.lock -nt "$stamp" ]; then
    have="stale-$have"
  fi
fi
case "$needs:$have" in
  run:run | run:test | test:test) ;;
  *)
    level="$needs"
    case "$have" in test | stale-test) level=test ;; esac
    pip=("$VENV/bin/python" -m pip --disable-pip-version-check install -q -c requirements.lock)
    echo "installing hip3 ($level) into $VENV" >&2
    "$VENV/bin/python" -m pip --disable-pip-version-check install -q --upgrade pip >&2
    if [ "$level" = test ]; then
      "${pip[@]}" -e '.[test]' requests websocket-client >&2
      # The official SDK is the independent reference in tests. It pins eth-account < 0.14 and
      # eth-utils < 6 but works with the current ones, so install it without its pins and test
      # against the versions production gets. Last, so no later install re-checks its pins.
      "${pip[@]}" --no-deps hyperliquid-python-sdk >&2
    else
      "${pip[@]}" -e . >&2
    fi
    echo "$level" >"$stamp"
    ;;
esac
