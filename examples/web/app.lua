-- A small web app. app.handle is independent of the server; app.magnet and
-- app.onstream are its handlers for lighttpd's mod_magnet (magnet.lua) and
-- for lua-http (server.lua).
--
--   local status, headers, body = app.handle(request)
--
-- request: { method =, path =, query =, pause = function (seconds) } where
-- pause, when the server has one, waits without blocking other requests.
--
--   GET /            the catalogue as an HTML page (a template)
--   GET /api/items   the catalogue as JSON (?n=how many, default 300)
--   GET /slow        a report that takes a while (crunches numbers)
--   GET /boom        fails: raises an error after some work
local app = {}

local gsub, find, sub, format = string.gsub, string.find, string.sub,
  string.format
local concat, sort = table.concat, table.sort
-- (LuaJIT and Lua 5.1 have no math.type: there a number without a
-- fraction that a double holds exactly is written as an integer)
local mtype = math.type or function (x)
  return x % 1 == 0 and x >= -2^53 and x <= 2^53 and "integer" or "float"
end

-- The data: a catalogue made up the same way each time, as if it came
-- from a database.
local WORDS = { "lamp", "chair", "kettle", "clock", "desk", "shelf", "mug",
                "rug", "vase", "stool", "mirror", "bench" }
local COLOURS = { "red", "oak", "steel", "white", "black", "green" }

local function catalogue (n)
  local seed = 42
  local function rand (m)
    seed = (seed * 1103515245 + 12345) % 2147483648
    return seed % m
  end
  local items = {}
  for i = 1, n do
    local name = COLOURS[rand(#COLOURS) + 1] .. " " .. WORDS[rand(#WORDS) + 1]
    items[i] = {
      id = i, name = name, price = (rand(20000) + 99) / 100,
      stock = rand(40), tags = { COLOURS[rand(#COLOURS) + 1], WORDS[rand(#WORDS) + 1] },
      description = "A " .. name .. " <" .. i .. "> & more",
    }
  end
  return items
end

---------------------------------------------------------------------------
-- Templates: {{name}} (escaped), {{#list}}...{{/list}} (once per element,
-- or once when the value is true).

local ESCAPES = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;",
                  ['"'] = "&quot;", ["'"] = "&#39;" }

local function escape_html (s)
  return (gsub(tostring(s), "[&<>\"']", ESCAPES))
end

local function parse_template (text, pos, closing)
  local nodes = {}
  pos = pos or 1
  while true do
    local s, e, kind, name = find(text, "{{([#/]?)([%w_]+)}}", pos)
    if not s then
      if closing then error("template: {{#" .. closing .. "}} is not closed") end
      nodes[#nodes + 1] = sub(text, pos)
      return nodes, #text + 1
    end
    if s > pos then nodes[#nodes + 1] = sub(text, pos, s - 1) end
    pos = e + 1
    if kind == "#" then
      local body
      body, pos = parse_template(text, pos, name)
      nodes[#nodes + 1] = { section = name, body = body }
    elseif kind == "/" then
      if name ~= closing then error("template: unexpected {{/" .. name .. "}}") end
      return nodes, pos
    else
      nodes[#nodes + 1] = { var = name }
    end
  end
end

local function render_nodes (nodes, context, out)
  for _, node in ipairs(nodes) do
    if type(node) == "string" then
      out[#out + 1] = node
    elseif node.var then
      local v = context[node.var]
      if v ~= nil then out[#out + 1] = escape_html(v) end
    else
      local v = context[node.section]
      if type(v) == "table" then
        for _, item in ipairs(v) do render_nodes(node.body, item, out) end
      elseif v then
        render_nodes(node.body, context, out)
      end
    end
  end
  return out
end

local function render_template (text, context)
  return concat(render_nodes(parse_template(text), context, {}))
end
app.render_template = render_template

local PAGE = [[
<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{title}}</title></head>
<body>
<h1>{{title}}</h1>
<p>{{count}} items. Add <code>?profile</code> to any address to see where its time goes.</p>
<table>
<tr><th>#</th><th>Name</th><th>Price</th><th>Stock</th><th>Tags</th><th>About</th></tr>
{{#items}}<tr><td>{{id}}</td><td>{{name}}</td><td>{{price}}</td><td>{{stock}}</td><td>{{#tags}}<span>{{tag}}</span> {{/tags}}</td><td>{{description}}</td></tr>
{{/items}}</table>
</body></html>
]]

local function home ()
  local items = catalogue(300)
  for _, item in ipairs(items) do
    item.price = format("%.2f", item.price)
    local tags = {}
    for i, t in ipairs(item.tags) do tags[i] = { tag = t } end
    item.tags = tags
  end
  local html = render_template(PAGE, { title = "Catalogue", count = #items, items = items })
  return 200, { ["Content-Type"] = "text/html; charset=utf-8" }, html
end

---------------------------------------------------------------------------
-- JSON

local JSON_ESCAPES = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b",
                       ["\f"] = "\\f", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }

local function encode_string (s)
  return '"' .. gsub(s, '[%c"\\]', function (c)
    return JSON_ESCAPES[c] or format("\\u%04x", c:byte())
  end) .. '"'
end

local function encode_value (v, out)
  local t = type(v)
  if t == "string" then
    out[#out + 1] = encode_string(v)
  elseif t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then
      out[#out + 1] = "null"
    else
      out[#out + 1] = mtype(v) == "integer" and format("%d", v) or format("%.14g", v)
    end
  elseif t == "boolean" then
    out[#out + 1] = tostring(v)
  elseif t == "table" then
    if v[1] ~= nil or next(v) == nil then
      out[#out + 1] = "["
      for i, x in ipairs(v) do
        if i > 1 then out[#out + 1] = "," end
        encode_value(x, out)
      end
      out[#out + 1] = "]"
    else
      local keys = {}
      for k in pairs(v) do keys[#keys + 1] = k end
      sort(keys, function (a, b) return tostring(a) < tostring(b) end)
      out[#out + 1] = "{"
      for i, k in ipairs(keys) do
        if i > 1 then out[#out + 1] = "," end
        out[#out + 1] = encode_string(tostring(k))
        out[#out + 1] = ":"
        encode_value(v[k], out)
      end
      out[#out + 1] = "}"
    end
  else
    out[#out + 1] = "null"
  end
  return out
end

local function encode_json (v)
  return concat(encode_value(v, {}))
end
app.encode_json = encode_json

local function items (request)
  local n = tonumber(app.query_value(request.query, "n")) or 300
  n = math.max(0, math.min(math.floor(n), 5000))
  local list = catalogue(n)
  if request.pause then request.pause(0.002) end  -- the stock levels
  return 200, { ["Content-Type"] = "application/json" },
    encode_json({ count = #list, items = list })
end

---------------------------------------------------------------------------
-- The slow report: statistics over numbers, in slices, with a wait for
-- "the database" between slices when the server lets the request wait.

local function crunch (from, to)
  local primes, sum = 0, 0
  for n = from, to do
    local prime = n > 1
    for d = 2, math.floor(math.sqrt(n)) do
      if n % d == 0 then prime = false break end
    end
    if prime then primes = primes + 1 sum = sum + n end
  end
  return primes, sum
end

local function slow (request)
  local slices, size = 10, 20000
  local primes, sum = 0, 0
  for i = 0, slices - 1 do
    local p, s = crunch(i * size + 1, (i + 1) * size)
    primes, sum = primes + p, sum + s
    if request.pause then request.pause(0.005) end
  end
  return 200, { ["Content-Type"] = "text/plain; charset=utf-8" },
    format("%d primes up to %d, their sum %d\n", primes, slices * size, sum)
end

---------------------------------------------------------------------------
-- A route that fails, to see what the server does then.

local function load_inventory ()
  local total = 0
  for _ = 1, 20 do total = total + #encode_json(catalogue(100)) end
  error("inventory service unavailable (after " .. total .. " bytes)")
end

local function boom ()
  load_inventory()
  return 200, {}, "not reached"
end

---------------------------------------------------------------------------

-- The decoded value of a query parameter.
function app.query_value (query, name)
  for pair in string.gmatch(query or "", "[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    if k == name then
      return (gsub(gsub(v, "+", " "), "%%(%x%x)", function (h)
        return string.char(tonumber(h, 16))
      end))
    end
  end
  return nil
end

local ROUTES = { ["/"] = home, ["/api/items"] = items, ["/slow"] = slow, ["/boom"] = boom }

function app.handle (request)
  local route = ROUTES[request.path]
  if not route then
    return 404, { ["Content-Type"] = "text/plain; charset=utf-8" }, "not found\n"
  end
  if request.method ~= "GET" and request.method ~= "HEAD" then
    return 405, { ["Content-Type"] = "text/plain; charset=utf-8", ["Allow"] = "GET, HEAD" },
      "method not allowed\n"
  end
  return route(request)
end

---------------------------------------------------------------------------
-- The app's handlers on the two servers.

-- lighttpd mod_magnet: fills lighty.r's response, returns the status.
function app.magnet (lighty)
  local r = lighty.r
  local status, headers, body = app.handle{
    method = r.req_attr["request.method"],
    path = r.req_attr["uri.path"],
    query = r.req_attr["uri.query"],
  }
  for name, value in pairs(headers) do r.resp_header[name] = value end
  r.resp_body:set{ body }
  return status
end

-- lua-http: onstream(server, stream), in the stream's own coroutine.
local function pause (seconds)
  require("cqueues").sleep(seconds)
end

function app.onstream (_, stream)
  local req = stream:get_headers()
  local method = req:get(":method")
  local path, query = (req:get(":path") or "/"):match("^([^?]*)%??(.*)$")
  local status, headers, body = app.handle{
    method = method, path = path, query = query ~= "" and query or nil,
    pause = pause,
  }
  local res = require("http.headers").new()
  res:append(":status", tostring(status))
  for name, value in pairs(headers) do res:append(name:lower(), value) end
  res:append("content-length", tostring(#body))
  if method == "HEAD" then
    stream:write_headers(res, true)
  else
    stream:write_headers(res, false)
    stream:write_chunk(body, true)
  end
end

return app
