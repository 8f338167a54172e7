-- Apache's mod_lua calls this script's handle(r) for every request (see
-- apache.conf: LuaMapHandler). serve is the app's ordinary mod_lua
-- handler: it writes the response with r:write and returns apache2.OK.
-- sprof.web runs it as is or, for a request with ?profile when profiling
-- is on (SPROF_WEB=1 in Apache's environment), under the profiler, and the
-- report is the response.
local app = require "app"
local web = require "sprof.web"

local function serve (r)
  local status, headers, body = app.handle{
    method = r.method, path = r.uri, query = r.args,
  }
  for name, value in pairs(headers) do
    if name == "Content-Type" then
      r.content_type = value
    else
      r.headers_out[name] = value
    end
  end
  r.status = status
  r:write(body)  -- (Apache sends no body for HEAD)
  return apache2.OK
end

-- mod_lua looks the entry function up among the globals
function handle (r)
  return web.apache(r, serve)
end
