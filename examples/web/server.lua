-- The example app on lua-http: every request runs in its own coroutine,
-- and a request that waits (the pauses of /slow and /api/items) lets the
-- others run.
--   examples/web/run-lua-http [PORT [OPTIONS]]
-- PORT 0 takes any free port; OPTIONS is a Lua file that returns the
-- options of sprof.web (by default the environment decides: SPROF_WEB=1).
-- Prints "listening on http://127.0.0.1:PORT/" once it accepts requests.
local http_server = require "http.server"
local web = require "sprof.web"
local app = require "app"

local port = tonumber(arg[1] or "8080")
local options = arg[2] and dofile(arg[2]) or nil

local server = assert(http_server.listen{
  host = "127.0.0.1",
  port = port,
  -- sprof.web wraps the app's handler: ?profile gets the report
  onstream = web.lua_http(app.onstream, options),
  -- the server's error handling: log it (the client gets lua-http's 503)
  onerror = function (_, context, op, err)
    io.stderr:write(string.format("%s on %s failed: %s\n", op, tostring(context), tostring(err)))
    io.stderr:flush()
  end,
})
assert(server:listen())
local _, host, bound = server:localname()
io.stdout:write(string.format("listening on http://%s:%d/\n", host, bound))
io.stdout:flush()
assert(server:loop())
