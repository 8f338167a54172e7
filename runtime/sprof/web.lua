-- sprof.web: profile the web requests that ask for it.
--
-- A request whose query string carries `profile` (and the token, when one
-- is set) runs under a profiler, and its report becomes the response (or,
-- with save_dir, is saved next to the normal response). Off unless enabled.
-- Requests that do not ask pay a string search of their query: no
-- profiler object, no timer, not even the sprof C module is loaded.
--
--   -- lighttpd mod_magnet (the script attracted by magnet.attract-*):
--   return require("sprof.web").magnet(lighty, handler, opts)
--   -- lua-http:
--   http_server.listen{ ..., onstream = require("sprof.web").lua_http(onstream, opts) }
--   -- HAProxy (an HTTP service in the lua-load file):
--   core.register_service("app", "http", require("sprof.web").haproxy(fn, opts))
--   -- Apache mod_lua (the LuaMapHandler script's entry function):
--   function handle (r) return require("sprof.web").apache(r, app, opts) end
--   -- nginx's Lua module (OpenResty), in a module that the location's
--   -- content_by_lua_block calls: app.serve()
--   app.serve = require("sprof.web").ngx(handler, opts)
--   -- anything else: web.wants, web.new, web.profile / web.pprofile,
--   -- web.respond (below)
--
-- Options (all optional; an option that is nil falls back to the
-- environment):
--   enabled   true to profile; default: SPROF_WEB=1 in the environment
--   token     only ?profile=TOKEN profiles; default: SPROF_WEB_TOKEN
--   save_dir  save each report in this folder and answer normally;
--             default: SPROF_WEB_DIR (false: never save)
--   format    "html" (default), "text", "collapsed", "json", "speedscope",
--             "pprof", or a list of them (each is saved; the first is the
--             response)
--   interval, clock, native   passed to sprof.new
--   render    render options: { show_all =, threshold = }
--   log       function (message) for the wrapper's own messages; default:
--             print under mod_magnet (lighttpd's error log), the server's
--             error log under HAProxy, Apache and nginx, else stderr
local web = {}

local find, sub, gsub, gmatch, match, byte, char, format, lower =
  string.find, string.sub, string.gsub, string.gmatch, string.match,
  string.byte, string.char, string.format, string.lower

-- format -> file name extension and content type
local FORMATS = {
  html = { ext = "html", type = "text/html; charset=utf-8" },
  text = { ext = "txt", type = "text/plain; charset=utf-8" },
  collapsed = { ext = "collapsed.txt", type = "text/plain; charset=utf-8" },
  json = { ext = "json", type = "application/json" },
  speedscope = { ext = "speedscope.json", type = "application/json" },
  pprof = { ext = "pb.gz", type = "application/octet-stream" },
}
web.formats = FORMATS

local OPTIONS = {
  enabled = "boolean", token = "string", save_dir = "string",
  format = "string", interval = "number", clock = "string",
  native = "boolean", render = "table", log = "function",
}

local function fail (level, msg, ...)
  error("sprof.web: " .. format(msg, ...), level + 1)
end

-- Checks an option table once (a table already seen is not checked again,
-- so a table kept in a module costs one lookup per request).
local checked = setmetatable({}, { __mode = "k" })

local function check (opts, level)
  if opts == nil or checked[opts] then return end
  level = (level or 1) + 1
  if type(opts) ~= "table" then fail(level, "options must be a table, got %s", type(opts)) end
  for k, v in pairs(opts) do
    local want = OPTIONS[k]
    if want == nil then fail(level, "unknown option '%s'", tostring(k)) end
    local ok = type(v) == want
      or ((k == "token" or k == "save_dir") and v == false)
      or (k == "format" and type(v) == "table")
    if not ok then fail(level, "option '%s' must be a %s, got %s", k, want, type(v)) end
  end
  local f = opts.format
  for _, name in ipairs(type(f) == "table" and f or { f }) do
    if not FORMATS[name] then fail(level, "unknown format '%s'", tostring(name)) end
  end
  if type(f) == "table" and #f == 0 then fail(level, "option 'format' is an empty list") end
  checked[opts] = true
end
web.check = check

-- An option, or its environment variable; "" counts as unset.
local function setting (opts, key, env)
  local v = opts and opts[key]
  if v == nil and env then v = os.getenv(env) end
  if v == "" or v == false then return nil end
  return v
end

local function enabled (opts)
  local v = opts and opts.enabled
  if v == nil then return os.getenv("SPROF_WEB") == "1" end
  return v
end

local function unescape (s)
  s = gsub(s, "+", " ")
  return (gsub(s, "%%(%x%x)", function (h) return char(tonumber(h, 16)) end))
end

-- The decoded values of the parameter 'name' in a query string
-- ("a=1&profile&b" has profile = ""), in order.
function web.query_values (query, name)
  local values = {}
  for pair in gmatch(query or "", "[^&]+") do
    local k, v = match(pair, "^([^=]*)=?(.*)$")
    if unescape(k) == name then values[#values + 1] = unescape(v) end
  end
  return values
end

-- Compares two strings in a time that does not depend on where they differ.
local function same (a, b)
  if #a ~= #b then return false end
  local diff = 0
  for i = 1, #a do  -- no bit operators: Lua 5.1 has none
    if byte(a, i) ~= byte(b, i) then diff = diff + 1 end
  end
  return diff == 0
end

-- Whether a request with this (raw) query string is to be profiled.
function web.wants (opts, query)
  -- the fast path: no "profile" in the query, not even encoded
  if query == nil or (not find(query, "profile", 1, true)
                      and not find(query, "%", 1, true)) then
    return false
  end
  if not enabled(opts) then return false end
  local values = web.query_values(query, "profile")
  if #values == 0 then return false end
  local token = setting(opts, "token", "SPROF_WEB_TOKEN")
  if token == nil then return true end
  for _, v in ipairs(values) do
    if same(v, token) then return true end
  end
  return false
end

local function formats (opts)
  local f = opts and opts.format or "html"
  return type(f) == "table" and f or { f }
end

local function default_log (msg)
  io.stderr:write(msg, "\n")
  io.stderr:flush()
end

local function log (opts, msg)
  local f = opts and opts.log or default_log
  pcall(f, "sprof.web: " .. msg)
end

-- One profiler runs per OS thread: the request being profiled in this Lua
-- state (held weakly: if its coroutine is dropped unfinished, the run goes
-- with it and its profiler stops when collected), and who waits for it
-- (lua-http).
local current = setmetatable({}, { __mode = "v" })
local waiters = nil

-- The file name of a saved report, without its extension: time, method,
-- path and duration, as pyinstrument's PROFILE_DIR names them
-- ("20261126-122334-GET-_api_items-0.042s"), "-error" when it failed.
function web.report_name (rec)
  local path = gsub(rec.path or "/", "/", "_")
  path = sub(gsub(path, "[^%w%-%._~]", "_"), 1, 100)
  local method = gsub(rec.method or "GET", "[^%w]", "_")
  return format("%s-%s-%s-%.3fs%s", os.date("%Y%m%d-%H%M%S", rec.started),
                method, path, rec.duration or 0, rec.failed and "-error" or "")
end

local function exists (path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- Saves the report in every format asked; sets rec.files.
local function save (rec)
  local opts, dir = rec.options, rec.save_dir
  local list = formats(opts)
  local base = dir .. "/" .. web.report_name(rec)
  local name, n = base, 1
  while true do  -- a name none of the files has yet
    local taken = false
    for _, f in ipairs(list) do
      if exists(name .. "." .. FORMATS[f].ext) then taken = true end
    end
    if not taken then break end
    n = n + 1
    name = base .. "-" .. n
  end
  rec.files = {}
  for _, f in ipairs(list) do
    local path = name .. "." .. FORMATS[f].ext
    local tmp = path .. ".tmp"
    -- written whole, then renamed: a reader never sees half a report
    rec.profiler:write(tmp, f, opts and opts.render)
    local ok, err = os.rename(tmp, path)
    if not ok then os.remove(tmp) error(err, 0) end
    rec.files[#rec.files + 1] = path
  end
end

-- Ends a profiled run (its to-be-closed value): stops the profiler, notes
-- the outcome and, with a save_dir, saves the report and frees the profile.
-- Runs on an error too, while the error goes on to the server unchanged.
local record = {}
record.__index = record

function record.__close (rec, err)
  local p = rec.profiler
  if p:running() then p:stop() end
  rec.duration = p:info().duration
  if err ~= nil then rec.failed, rec.error = true, err end
  current.run = nil
  if waiters then waiters:signal() end
  if rec.save_dir then
    local ok, why = pcall(save, rec)
    if not ok then log(rec.options, "could not save the report: " .. tostring(why)) end
    p:reset()  -- free it now, not at the next garbage collection
  end
end

local sprof  -- the C module, loaded by the first profiled request

-- Starts profiling a request, in the calling coroutine (the one that will
-- run the handler): request is { method =, path =, query = }. Returns the
-- run, or nil and why no profiler can run now (then serve the request as
-- usual).
function web.new (opts, request)
  check(opts, 2)
  if current.run then return nil, "another request is being profiled" end
  if not sprof then
    local ok, m = pcall(require, "sprof")
    if not ok then return nil, tostring(m) end
    sprof = m
  end
  local ok, p = pcall(sprof.new, {
    interval = opts and opts.interval, clock = opts and opts.clock,
    native = opts and opts.native })
  if not ok then return nil, tostring(p) end
  -- the report's title (not the query: it holds the token), when the
  -- module can set one
  local set_program = p.set_program
  if set_program then
    set_program(p, (request.method or "GET") .. " " .. (request.path or "/"))
  end
  local started, why = pcall(p.start, p)
  if not started then return nil, tostring(why) end
  local rec = setmetatable({
    options = opts, profiler = p, started = os.time(),
    method = request.method, path = request.path, query = request.query,
    save_dir = setting(opts, "save_dir", "SPROF_WEB_DIR"),
  }, record)
  current.run = rec
  return rec
end

-- Lua 5.4 ends the run through a to-be-closed variable: on an error too,
-- and the error goes on untouched. Older Lua (5.3 under HAProxy and
-- Apache) cannot parse that: there fn runs under xpcall (its traceback
-- kept in rec.trace), the run is ended, and the error is raised again.
local pack = table.pack or function (...) return { n = select("#", ...), ... } end
local unpack = table.unpack or unpack

local closing = (loadstring or load)(
  "return function (rec, fn, ...) local guard <close> = rec return fn(...) end")

local run = closing and closing() or function (rec, fn, ...)
  local function keep_trace (e)
    rec.trace = debug.traceback(tostring(e), 2)
    return e
  end
  local args = pack(...)
  local res = pack(xpcall(function () return fn(unpack(args, 1, args.n)) end,
                          keep_trace))
  if res[1] then
    record.__close(rec, nil)
    return unpack(res, 2, res.n)
  end
  record.__close(rec, res[2])
  error(res[2], 0)
end

-- Runs fn(...) as the profiled request and returns fn's results. An error
-- of fn goes on unchanged (nothing catches it here, so the server's own
-- handler sees its traceback) after the report is saved.
function web.profile (rec, fn, ...)
  return run(rec, fn, ...)
end

-- Like web.profile, but catches an error: returns true and fn's results,
-- or false, the error and its traceback.
function web.pprofile (rec, fn, ...)
  local trace
  local function handler (e)
    trace = debug.traceback(tostring(e), 2)
    return e
  end
  local args = pack(...)  -- (5.1's xpcall passes no arguments on)
  local res = pack(xpcall(function ()
    return run(rec, fn, unpack(args, 1, args.n))
  end, handler))
  if res[1] then return unpack(res, 1, res.n) end
  return false, res[2], rec.trace or trace
end

-- The report of a run without a save_dir, as a response: body, content
-- type, status (200; 500 when the request failed). Frees the profile.
function web.respond (rec)
  local f = formats(rec.options)[1]
  local body = rec.profiler:output(f, rec.options and rec.options.render)
  rec.profiler:reset()
  return body, FORMATS[f].type, rec.failed and 500 or 200
end

---------------------------------------------------------------------------
-- lighttpd mod_magnet. The script that mod_magnet runs for each request:
--   return require("sprof.web").magnet(lighty, handler, opts)
-- handler(lighty) is the app's normal magnet code: it sets lighty.r's
-- response and returns its status (or nothing, to let lighttpd go on).

-- print goes to lighttpd's error log under mod_magnet, a line at a time
local function print_lines (msg)
  for line in gmatch(msg, "[^\n]+") do print(line) end
end

local function magnet_log (opts)
  if opts and opts.log then return opts end
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  o.log = print_lines
  checked[o] = true
  return o
end

function web.magnet (lighty, handler, opts)
  if opts ~= nil and not checked[opts] then check(opts, 2) end
  local r = lighty.r
  local attr = r.req_attr
  local query = attr["uri.query"]
  if not web.wants(opts, query) then return handler(lighty) end

  opts = magnet_log(opts)
  local rec, why = web.new(opts, { method = attr["request.method"],
                                   path = attr["uri.path"], query = query })
  if not rec then
    log(opts, "not profiled: " .. why)
    return handler(lighty)
  end
  if rec.save_dir then  -- the normal response; an error goes on as usual
    return web.profile(rec, handler, lighty)
  end
  -- the report is the response; mod_magnet would replace any body with its
  -- error page, so a failed request is logged here as mod_magnet logs it
  local ok, err, trace = web.pprofile(rec, handler, lighty)
  if not ok then log(opts, (rec.method or "") .. " " .. (rec.path or "")
                      .. " failed: " .. (trace or tostring(err))) end
  local body, ctype, status = web.respond(rec)
  local headers, names = r.resp_header, {}
  for name in pairs(headers) do names[#names + 1] = name end
  for _, name in ipairs(names) do headers[name] = nil end
  headers["Content-Type"] = ctype
  headers["Cache-Control"] = "no-store"
  r.resp_body:set{ body }
  return status
end

---------------------------------------------------------------------------
-- lua-http. Wraps an onstream(server, stream) handler:
--   http_server.listen{ ..., onstream = web.lua_http(onstream, opts) }
-- The wrapper reads the request's headers to see its query, so the handler
-- gets a stand-in for the stream whose first get_headers() returns them;
-- everything else goes to the stream. The profiler runs in the stream's
-- coroutine: while the handler waits, other requests run, and their time
-- is not in this request's report.

local REAL, HEADERS = {}, {}

local stand_in = {}

function stand_in.__index (t, k)
  local real = rawget(t, REAL)
  local v = real[k]
  if type(v) ~= "function" then return v end
  local f = function (self, ...)
    if rawequal(self, t) then self = real end
    return v(self, ...)
  end
  rawset(t, k, f)
  return f
end

function stand_in.__newindex (t, k, v)
  rawget(t, REAL)[k] = v
end

function stand_in.__tostring (t)
  return tostring(rawget(t, REAL))
end

local function first_headers (self, ...)
  local h = rawget(self, HEADERS)
  if h then
    rawset(self, HEADERS, false)
    return h
  end
  return rawget(self, REAL):get_headers(...)
end

-- With the report as the response, what the handler writes is not sent.
local function swallow () return true end

local function new_stand_in (stream, headers, swallowing)
  local s = setmetatable({ [REAL] = stream, [HEADERS] = headers,
                           get_headers = first_headers }, stand_in)
  if swallowing then
    rawset(s, "write_headers", swallow)
    rawset(s, "write_chunk", swallow)
    rawset(s, "write_body_from_string", swallow)
    rawset(s, "write_body_from_file", swallow)
    rawset(s, "shutdown", swallow)
  end
  return s
end

-- Waits (in the stream's coroutine, up to 'seconds') for the request being
-- profiled to end. false if it did not.
local function wait_turn (seconds)
  if not current.run then return true end
  local ok, condition = pcall(require, "cqueues.condition")
  if not ok then return false end
  local monotime = require("cqueues").monotime
  waiters = waiters or condition.new()
  local deadline = monotime() + seconds
  while current.run do
    local left = deadline - monotime()
    if left <= 0 then return false end
    waiters:wait(left)
  end
  return true
end

function web.lua_http (onstream, opts)
  if type(onstream) ~= "function" then
    error("sprof.web: lua_http wants the onstream function, got " .. type(onstream), 2)
  end
  check(opts, 2)
  return function (server, stream)
    local headers = stream:get_headers()
    if not headers then return onstream(server, stream) end
    local path = headers:get(":path") or ""
    local q = find(path, "?", 1, true)
    local query = q and sub(path, q + 1)
    if not web.wants(opts, query) then
      return onstream(server, new_stand_in(stream, headers))
    end

    local method = headers:get(":method")
    local request = { method = method, path = q and sub(path, 1, q - 1) or path,
                      query = query }
    if not wait_turn(60) then
      log(opts, "not profiled: another request is still being profiled")
      return onstream(server, new_stand_in(stream, headers))
    end
    local rec, why = web.new(opts, request)
    if not rec then
      log(opts, "not profiled: " .. why)
      return onstream(server, new_stand_in(stream, headers))
    end
    if rec.save_dir then
      return web.profile(rec, onstream, server, new_stand_in(stream, headers))
    end

    local ok, err = web.pprofile(rec, onstream, server,
                                 new_stand_in(stream, headers, true))
    local body, ctype, status = web.respond(rec)
    local out = require("http.headers").new()
    out:append(":status", tostring(status))
    out:append("content-type", ctype)
    out:append("cache-control", "no-store")
    out:append("content-length", tostring(#body))
    if lower(method or "") == "head" then
      stream:write_headers(out, true)
    else
      stream:write_headers(out, false)
      stream:write_chunk(body, true)
    end
    -- the server's own error handling (its onerror) still sees the error
    if not ok then error(err, 0) end
  end
end

---------------------------------------------------------------------------
-- HAProxy. Wraps the function of an HTTP service (Lua 5.3 in HAProxy 2.x):
--   core.register_service("app", "http", web.haproxy(handler, opts))
-- handler(applet) is the service's own function. HAProxy runs each request
-- in a coroutine of its own and interrupts it every tune.lua.forced-yield
-- instructions to let other requests run: the profiler runs in that
-- coroutine, and the time it spends interrupted shows as [suspended].

-- HAProxy's log (its log servers, and stderr unless quiet), else stderr.
local function haproxy_log (msg)
  local core = rawget(_G, "core")
  if type(core) == "table" and type(core.log) == "function" then
    for line in gmatch(msg, "[^\n]+") do core.log(core.err, line) end
  else
    default_log(msg)
  end
end

-- With the report as the response, what the handler sends is dropped;
-- everything else (applet.headers, applet:receive(), ...) is the applet's.
local function applet_stand_in (applet)
  local s = setmetatable({ [REAL] = applet }, stand_in)
  for _, name in ipairs{ "set_status", "add_header", "start_response", "send" } do
    rawset(s, name, swallow)
  end
  return s
end

function web.haproxy (handler, opts)
  if type(handler) ~= "function" then
    error("sprof.web: haproxy wants the service's function, got " .. type(handler), 2)
  end
  check(opts, 2)
  if not (opts and opts.log) then
    local o = {}
    for k, v in pairs(opts or {}) do o[k] = v end
    o.log = haproxy_log
    checked[o] = true
    opts = o
  end
  return function (applet)
    local query = applet.qs
    if query == "" then query = nil end
    if not web.wants(opts, query) then return handler(applet) end

    local request = { method = applet.method, path = applet.path, query = query }
    local rec, why = web.new(opts, request)
    if not rec and current.run then
      -- HAProxy drops a coroutine it ends for its service timeout without
      -- an error: its run stays current until collected (Lua 5.3 has no
      -- to-be-closed variables). A full collection ends such runs.
      collectgarbage()
      rec, why = web.new(opts, request)
    end
    if not rec then
      log(opts, "not profiled: " .. why)
      return handler(applet)
    end
    if rec.save_dir then  -- the normal response; an error goes on as usual
      return web.profile(rec, handler, applet)
    end
    local ok, err, trace = web.pprofile(rec, handler, applet_stand_in(applet))
    if not ok then log(opts, (rec.method or "") .. " " .. (rec.path or "")
                        .. " failed: " .. (trace or tostring(err))) end
    if not ok and find(tostring(err), "execution timeout", 1, true) then
      -- HAProxy's service timeout: it ends the request at its next yield,
      -- and sending a report yields
      log(opts, "the report of a request ended by tune.lua.service-timeout"
                .. " cannot be sent: save_dir keeps it")
      rec.profiler:reset()
      error(err, 0)
    end
    local body, ctype, status = web.respond(rec)
    applet:set_status(status)
    applet:add_header("content-type", ctype)
    applet:add_header("cache-control", "no-store")
    applet:add_header("content-length", tostring(#body))
    applet:start_response()
    if lower(applet.method or "") ~= "head" then applet:send(body) end
  end
end

---------------------------------------------------------------------------
-- Apache httpd mod_lua (Lua 5.3 on Debian 12). The LuaMapHandler script's
-- entry function hands each request to the app's ordinary handler:
--   function handle (r) return require("sprof.web").apache(r, app, opts) end
-- handler(r) writes the response with r:puts / r:write, sets
-- r.content_type and returns apache2.OK (or a status). mod_lua runs it in
-- the main thread of a state that serves one request at a time.

-- With the report as the response, what the handler writes is dropped;
-- everything else (r.headers_in, r:parseargs(), r.status ...) is r's.
local function request_stand_in (r)
  local s = setmetatable({ [REAL] = r }, stand_in)
  for _, name in ipairs{ "puts", "write", "sendfile", "flush" } do
    rawset(s, name, swallow)
  end
  return s
end

-- Apache's error log, with the request's client (r:err), a line at a time.
local function apache_log (r, opts)
  if opts and opts.log then return opts end
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  o.log = function (msg)
    for line in gmatch(msg, "[^\n]+") do r:err(line) end
  end
  checked[o] = true
  return o
end

local APACHE_OK = 0  -- apache2.OK: the handler has answered

function web.apache (r, handler, opts)
  if opts ~= nil and not checked[opts] then check(opts, 2) end
  local query = r.args
  if not web.wants(opts, query) then return handler(r) end

  opts = apache_log(r, opts)
  local rec, why = web.new(opts, { method = r.method, path = r.uri, query = query })
  if not rec then
    log(opts, "not profiled: " .. why)
    return handler(r)
  end
  if rec.save_dir then  -- the normal response; an error goes on to mod_lua
    return web.profile(rec, handler, r)
  end
  -- the report is the response: the headers the handler set are removed
  local ok, err, trace = web.pprofile(rec, handler, request_stand_in(r))
  if not ok then log(opts, (rec.method or "") .. " " .. (rec.path or "")
                      .. " failed: " .. (trace or tostring(err))) end
  local body, ctype, status = web.respond(rec)
  for name in pairs(r:headers_out_table()) do r.headers_out[name] = nil end
  r.status = status
  r.content_type = ctype
  r.headers_out["Cache-Control"] = "no-store"
  r:write(body)
  return APACHE_OK
end

---------------------------------------------------------------------------
-- nginx with its Lua module (lua-nginx-module, as in OpenResty; LuaJIT).
-- Wraps the app's content handler; the location calls what it returns:
--   app.serve = web.ngx(handler, opts)
--   location / { content_by_lua_block { require("app").serve() } }
-- handler(...) answers through the ngx API as usual (ngx.status,
-- ngx.header, ngx.say / ngx.print, ngx.exit). Each worker has a Lua state
-- of its own and runs each request in a coroutine: the profiler runs in
-- the request's, and the time the request waits (ngx.sleep, cosockets)
-- while the worker serves others shows as [suspended]. LuaJIT profiles
-- one state at a time, and a worker one request: another ?profile
-- meanwhile is served unprofiled, with a line in the error log.
--
-- The ngx API is a global table that all the worker's requests share.
-- While a request is profiled, its functions that send the response or
-- end the request are stand-ins: for the profiled request they drop what
-- the handler sends (when the report is the response) and end the run
-- before the request ends (ngx.exit never returns to the handler); for
-- any other request they are nginx's own.

local NGX_SENDING = { "print", "say", "flush", "eof", "send_headers" }
local NGX_ENDING = { "exit", "redirect", "exec" }

local ngx_api      -- the global ngx table, once web.ngx has been called
local ngx_own = {}  -- nginx's own functions, by name
local ngx_stand_ins = {}

-- The worker's profiled request: its run, held until the run ends (the
-- request's coroutine may be dropped without it, see ngx_end_stale), and
-- the request's ngx.ctx, held weakly: nginx frees that table when the
-- request ends, so an empty holder is a request that is over.
local ngx_run = nil
local WEAK_VALUES = { __mode = "v" }

local function ngx_log (msg)
  ngx_api.log(ngx_api.WARN, msg)
end

local function request_ctx () return ngx_api.ctx end

-- The run of the request this code serves, if that one is profiled
-- (ngx.ctx is the request's own table, in its light threads too).
local function ngx_profiled ()
  local rec = ngx_run
  if not rec then return nil end
  local ok, ctx = pcall(request_ctx)  -- (no request in init phases)
  if ok and ctx == rec.ngx_ctx[1] then return rec end
  return nil
end

local function ngx_install ()
  for name, f in pairs(ngx_stand_ins) do
    if ngx_api[name] ~= f then
      ngx_own[name] = ngx_api[name]
      ngx_api[name] = f
    end
  end
end

local function ngx_restore ()
  for name, f in pairs(ngx_stand_ins) do
    if ngx_api[name] == f then ngx_api[name] = ngx_own[name] end
  end
end

-- After the run has ended: nginx's own functions back.
local function ngx_done (rec)
  if ngx_run == rec then ngx_run = nil end
  ngx_restore()
end

-- A run whose request ended without coming back to the wrapper (through
-- a copy of ngx.exit taken before the run began, or a client gone with
-- lua_check_client_abort): once a full collection has freed the
-- request's ngx.ctx, its profiler is stopped and the run dropped.
-- (A ?profile while another request is profiled costs a full collection.)
local function ngx_end_stale ()
  local rec = ngx_run
  if not rec then return end
  if rec.ngx_ctx[1] ~= nil then collectgarbage() end
  if rec.ngx_ctx[1] ~= nil then return end  -- its request goes on
  local p = rec.profiler
  if p:running() then p:stop() end
  p:reset()
  if current.run == rec then current.run = nil end
  ngx_done(rec)
  log(rec.options, "the run of " .. (rec.method or "") .. " " .. (rec.path or "")
      .. " ended without sprof.web (a copy of ngx.exit?): no report")
end

-- Sends the report of a run without a save_dir as the response: its
-- headers replace those the handler set.
local function ngx_send (rec)
  local ngx = ngx_api
  if ngx.headers_sent then
    -- through a copy of ngx.print / ngx.say taken before the run began
    log(rec.options, "the report of " .. (rec.method or "") .. " " .. (rec.path or "")
        .. " cannot be sent: the handler has sent its response already"
        .. " (save_dir keeps the reports)")
    rec.profiler:reset()
    return
  end
  local body, ctype, status = web.respond(rec)
  for name in pairs(ngx.resp.get_headers()) do ngx.header[name] = nil end
  ngx.status = status
  ngx.header["Content-Type"] = ctype
  ngx.header["Cache-Control"] = "no-store"
  ngx.header["Content-Length"] = #body
  ngx.print(body)
end

for _, name in ipairs(NGX_SENDING) do
  ngx_stand_ins[name] = function (...)
    local rec = ngx_profiled()
    if rec and not rec.save_dir then return 1 end  -- the report answers
    return ngx_own[name](...)
  end
end

for _, name in ipairs(NGX_ENDING) do
  ngx_stand_ins[name] = function (...)
    local rec = ngx_profiled()
    if rec then  -- the handler ends its request here: end the run first
      record.__close(rec, nil)
      ngx_done(rec)
      if not rec.save_dir then
        ngx_send(rec)
        return ngx_own.exit(ngx_api.HTTP_OK)
      end
    end
    return ngx_own[name](...)
  end
end

function web.ngx (handler, opts)
  if type(handler) ~= "function" then
    error("sprof.web: ngx wants the content handler, got " .. type(handler), 2)
  end
  check(opts, 2)
  ngx_api = rawget(_G, "ngx")
  if type(ngx_api) ~= "table" then
    error("sprof.web: ngx runs in nginx's Lua module only (no ngx table here)", 2)
  end
  if not (opts and opts.log) then
    local o = {}
    for k, v in pairs(opts or {}) do o[k] = v end
    o.log = ngx_log
    checked[o] = true
    opts = o
  end
  return function (...)
    local ngx = ngx_api
    local query = ngx.var.args
    if not web.wants(opts, query) then return handler(...) end

    ngx_end_stale()
    local rec, why = web.new(opts, { method = ngx.req.get_method(),
                                     path = ngx.var.uri, query = query })
    if not rec then
      if find(why, "module 'sprof' not found", 1, true) then
        why = "no sprof.so for LuaJIT on lua_package_cpath (a build's"
              .. " luajit/sprof.so, or lib/lua/5.1/ of an install)"
      end
      log(opts, "not profiled: " .. match(why, "^[^\n]*"))
      return handler(...)
    end
    rec.ngx_ctx = setmetatable({ ngx.ctx }, WEAK_VALUES)
    ngx_run = rec
    ngx_install()
    -- (when the handler ends the request, with ngx.exit, what follows
    -- does not run: the stand-in has ended the run)
    local ok, err, trace = web.pprofile(rec, handler, ...)
    ngx_done(rec)
    if rec.save_dir then  -- the normal response; an error goes on to nginx
      if not ok then error(err, 0) end
      return
    end
    if not ok then log(opts, (rec.method or "") .. " " .. (rec.path or "")
                        .. " failed: " .. (trace or tostring(err))) end
    ngx_send(rec)
  end
end

return web
