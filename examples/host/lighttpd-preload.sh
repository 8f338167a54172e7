#!/bin/sh
# Profiles an unmodified lighttpd serving a mod_magnet Lua script, through
# LD_PRELOAD: mod_magnet links liblua5.4.so, so libsprof's luaL_newstate
# and lua_close are the ones it calls. The report is written when lighttpd
# shuts down (SIGINT: graceful) and closes the script's Lua state.
#   examples/host/lighttpd-preload.sh [REPORT] [REQUESTS]   (run from the checkout)
set -eu
report=${1:-lighttpd-profile.txt}
requests=${2:-50}
lib=${SPROF_LIB:-$PWD/build/libsprof.so}
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
cat >"$dir/app.lua" <<'LUA'
local function fib (n) if n < 2 then return n end return fib(n - 1) + fib(n - 2) end
local function handle ()
  local r = lighty.r
  r.resp_header["Content-Type"] = "text/plain"
  r.resp_body:set({ tostring(fib(24)), "\n" })
  return 200
end
return handle()
LUA
port=$((20000 + $$ % 20000))
cat >"$dir/lighttpd.conf" <<CONF
server.modules = ("mod_magnet")
server.document-root = "$dir"
server.bind = "127.0.0.1"
server.port = $port
server.errorlog = "$dir/error.log"
magnet.attract-raw-url-to = ("$dir/app.lua")
CONF
# (a preload already set, such as a sanitizer's runtime, stays first)
LD_PRELOAD="${LD_PRELOAD:+$LD_PRELOAD }$lib" SPROF_OUTPUT=$report \
  lighttpd -D -f "$dir/lighttpd.conf" &
pid=$!
i=0
fetch () { env -u LD_PRELOAD curl -sf -m 10 "http://127.0.0.1:$port/" >/dev/null; }
until fetch 2>/dev/null; do
  i=$((i + 1)); [ $i -lt 50 ] || { echo "lighttpd did not start"; cat "$dir/error.log"; exit 1; }
  sleep 0.1
done
i=0
while [ $i -lt "$requests" ]; do
  fetch
  i=$((i + 1))
done
kill -INT "$pid"
wait "$pid" || true
echo "report: $report"
