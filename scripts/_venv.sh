# Sourced by scripts/*: make sure .venv exists and holds the project with its test extras.
# Re-installs when pyproject.toml is newer than the last install.
VENV="${HIP3_VENV:-$PWD/.venv}"
stamp="$VENV/.hip3-installed"
if [ ! -x "$VENV/bin/python" ]; then
  echo "creating $VENV" >&2
  python3 -m venv "$VENV"
fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "installing hip3 and its test dependencies into $VENV" >&2
  "$VENV/bin/python" -m pip install -q --upgrade pip >&2
  "$VENV/bin/python" -m pip install -q -e '.[test]' >&2
  # The official SDK is the independent reference in tests. It pins eth-account < 0.14 and
  # eth-utils < 6 but works with the current ones, so install it without its pins and test
  # against the versions production gets.
  "$VENV/bin/python" -m pip install -q --no-deps 'hyperliquid-python-sdk>=0.20' >&2
  "$VENV/bin/python" -m pip install -q requests websocket-client >&2
  touch "$stamp"
fi
