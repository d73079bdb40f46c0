#!/usr/bin/env bash
# Vendors TradingView's lightweight-charts at VERSION for the page that
# `kisfeed serve` shows at /, from the npm package, unmodified:
#
#   scripts/update-lightweight-charts.sh 5.2.1
#
# It writes into internal/httpapi/web/vendor/lightweight-charts/:
#   lightweight-charts.standalone.production.js  the standalone production build
#   LICENSE                                       the package's Apache-2.0 licence
#   NOTICE                                        the attribution notice the licence
#                                                 asks for (its README: "add the
#                                                 attribution notice from the NOTICE
#                                                 file and a link to tradingview.com");
#                                                 the npm package carries no NOTICE file,
#                                                 so it is written from the build's own
#                                                 copyright banner
#   lightweight-charts.version                    the version and the file's sha256,
#                                                 which TestVendoredChartLibrary checks
# Needs npm (only here, never at build or test time) and sha256sum.
set -euo pipefail
if [ $# -ne 1 ] || [[ ! $1 =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
  sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'
  echo "want one exact version like 5.2.1" >&2
  exit 2
fi
version=$1
command -v npm >/dev/null || { echo "update-lightweight-charts: npm is needed (apt-get install npm)" >&2; exit 1; }
root=$(cd "$(dirname "$0")/.." && pwd)
dst="$root/internal/httpapi/web/vendor/lightweight-charts"
js=lightweight-charts.standalone.production.js
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "lightweight-charts@$version" >/dev/null && tar xzf "lightweight-charts-$version.tgz")
src="$tmp/package"
[ -f "$src/dist/$js" ] || { echo "update-lightweight-charts: the package has no dist/$js" >&2; exit 1; }
[ -f "$src/LICENSE" ] || { echo "update-lightweight-charts: the package has no LICENSE" >&2; exit 1; }
head -c 400 "$src/dist/$js" | grep -q "Lightweight Charts.* v$version" ||
  { echo "update-lightweight-charts: dist/$js does not say v$version in its banner" >&2; exit 1; }
copyright=$(head -c 400 "$src/dist/$js" | grep -o 'Copyright (c) [0-9]* TradingView, Inc\.' | head -n1)
[ -n "$copyright" ] || { echo "update-lightweight-charts: no TradingView copyright line in dist/$js" >&2; exit 1; }
mkdir -p "$dst"
cp "$src/dist/$js" "$dst/$js"
cp "$src/LICENSE" "$dst/LICENSE"
printf 'TradingView Lightweight Charts™\n%s https://www.tradingview.com/\n' "$copyright" >"$dst/NOTICE"
sum=$(sha256sum "$dst/$js" | cut -d' ' -f1)
{
  echo "# Written by scripts/update-lightweight-charts.sh; checked by TestVendoredChartLibrary."
  echo "version $version"
  echo "sha256 $sum  $js"
} >"$dst/lightweight-charts.version"
echo "lightweight-charts $version vendored in ${dst#"$root"/} (sha256 $sum)"
