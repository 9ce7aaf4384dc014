# Helpers sourced by the set-up scripts in tests/setup/*.sh (not run on its own).
# Installs are idempotent: packages already present are not fetched again.

# apt_install PKG...: installs the Debian packages that are missing; `apt-get update` runs once per run-all.
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if [ ! -e "${AGE_OAUTH_SETUP_STAMP:-/tmp/age-oauth-apt-updated}" ]; then
    $sudo apt-get update -qq
    touch "${AGE_OAUTH_SETUP_STAMP:-/tmp/age-oauth-apt-updated}"
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
