-- The example app (app.lua) as an HAProxy HTTP service, under sprof.web:
-- with profiling on (SPROF_WEB=1), a request with ?profile answers with
-- the report of that request. haproxy.cfg loads this file (lua-load) and
-- tells Lua where app.lua, sprof.web and sprof.so are (lua-prepend-path).
local app = require "app"
local web = require "sprof.web"

-- core.msleep waits without blocking HAProxy: other requests run meanwhile.
local function pause (seconds)
  core.msleep(math.floor(seconds * 1000 + 0.5))
end

-- The app's handler on HAProxy: the applet holds the request and sends the
-- response.
local function serve (applet)
  local status, headers, body = app.handle{
    method = applet.method, path = applet.path,
    query = applet.qs ~= "" and applet.qs or nil, pause = pause,
  }
  applet:set_status(status)
  for name, value in pairs(headers) do applet:add_header(name, value) end
  applet:add_header("content-length", tostring(#body))
  applet:start_response()
  if applet.method ~= "HEAD" then applet:send(body) end
end

core.register_service("app", "http", web.haproxy(serve))
