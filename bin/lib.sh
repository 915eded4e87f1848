# Shared by bin/run and bin/test (sourced, not run). Everything a fresh machine needs.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
DATA_DIR="$ROOT/.data"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

find_python() {
  local candidate
  for candidate in python3.11 python3 python; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] < (3, 11))' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  echo "Python 3.11 or newer is required (Debian: apt-get install python3 python3-venv)." >&2
  return 1
}

# ensure_venv REQUIREMENTS_FILE: create .venv and install the requirements when they changed.
ensure_venv() {
  local requirements="$1" python stamp wanted
  if [ ! -x "$VENV/bin/python" ]; then
    python="$(find_python)" || return 1
    say "Creating a virtualenv in .venv ($("$python" --version))"
    "$python" -m venv "$VENV" || {
      echo "Could not create a virtualenv (Debian: apt-get install python3-venv)." >&2
      return 1
    }
  fi
  stamp="$VENV/.requirements.sha256"
  wanted="$(cat "$ROOT"/requirements*.txt | sha256sum | cut -d' ' -f1)-$requirements"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
    say "Installing $requirements"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$ROOT/$requirements"
    echo "$wanted" >"$stamp"
  fi
  export PATH="$VENV/bin:$PATH"
}

# ensure_tool_venv NAME: .venv-tools/NAME, a virtualenv of its own for a tool whose pins clash
# with the project's (requirements-NAME.txt), installed again only when that file changed. A lock
# keeps two runs that start at once from installing over each other.
ensure_tool_venv() {
  local name="$1" dir="$ROOT/.venv-tools/$1" requirements="$ROOT/requirements-$1.txt"
  local python wanted
  wanted="$(sha256sum "$requirements" | cut -d' ' -f1)"
  mkdir -p "$ROOT/.venv-tools"
  (
    flock 9
    [ -x "$dir/bin/python" ] && [ "$(cat "$dir/.requirements.sha256" 2>/dev/null)" = "$wanted" ] &&
      exit 0
    python="$(find_python)" || exit 1
    say "Installing $name into .venv-tools/$name (again only when requirements-$name.txt changes)"
    rm -rf "$dir"
    "$python" -m venv "$dir" &&
      "$dir/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements" &&
      echo "$wanted" >"$dir/.requirements.sha256"
  ) 9>"$ROOT/.venv-tools/$name.lock"
}

# ensure_services DBNAME: PostgreSQL and Redis from the environment, from 127.0.0.1, or embedded
# ones in .data/ (see bin/services.py). Embedded servers this run started stop when it exits.
ensure_services() {
  local env_file="$DATA_DIR/services.env"
  mkdir -p "$DATA_DIR"
  "$VENV/bin/python" "$ROOT/bin/services.py" up --data-dir "$DATA_DIR" --env-file "$env_file" \
    --db "$1" || return 1
  # shellcheck disable=SC1090
  . "$env_file"
  if [ -n "${HERALD_STARTED_SERVICES:-}" ]; then
    trap stop_embedded_services EXIT
  fi
}

stop_embedded_services() {
  "$VENV/bin/python" "$ROOT/bin/services.py" down --data-dir "$DATA_DIR" || true
}

# ensure_chromium: Debian's Chromium for the browser tests (Playwright drives /usr/bin/chromium; it
# never downloads a browser of its own). Installs it with apt-get when missing and we may.
ensure_chromium() {
  local chromium="${HERALD_CHROMIUM:-/usr/bin/chromium}" sudo=""
  [ -x "$chromium" ] && return 0
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      sudo="sudo -n"
    else
      echo "The browser tests need Chromium at $chromium (Debian: sudo apt-get install chromium)." >&2
      return 1
    fi
  fi
  say "Installing Chromium (Debian package) for the browser tests"
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    chromium fonts-dejavu-core >/dev/null
}
