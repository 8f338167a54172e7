-- The example app (app.lua) on nginx's Lua module, under sprof.web: with
-- profiling on (SPROF_WEB=1 in nginx's environment, and `env SPROF_WEB;`
-- in nginx.conf), a request with ?profile answers with the report of
-- that request. nginx.conf's location calls serve():
--   content_by_lua_block { require("nginx-app").serve() }
local app = require "app"
local web = require "sprof.web"

local ngx = ngx

-- ngx.sleep waits without blocking the worker: it serves other requests
-- meanwhile.
local function pause (seconds)
  ngx.sleep(seconds)
end

-- The app's handler on nginx: the request and the response are the ngx
-- API's.
local function serve ()
  local status, headers, body = app.handle{
    method = ngx.req.get_method(), path = ngx.var.uri, query = ngx.var.args,
    pause = pause,
  }
  ngx.status = status
  for name, value in pairs(headers) do ngx.header[name] = value end
  ngx.header["Content-Length"] = #body
  ngx.print(body)  -- (nginx sends no body for HEAD)
end

return { serve = web.ngx(serve) }
