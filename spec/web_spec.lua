-- sprof.web on real servers: lighttpd (mod_magnet) and lua-http run the
-- example app (examples/web) on 127.0.0.1, on free ports, and curl sends
-- them real requests. Every server is stopped in the teardowns, and each
-- runs under `timeout`, so none outlives a crashed test run.
local h = require "spec.helper"
local json = require "dkjson"

local EXAMPLE = h.root .. "/examples/web"
local LUA_PATH = EXAMPLE .. "/?.lua;" .. h.root .. "/runtime/?.lua;;"
  .. "/usr/share/lua/5.1/?.lua;/usr/share/lua/5.1/?/init.lua"
local LUA_CPATH = h.build .. "/?.so;;"
package.path = h.root .. "/runtime/?.lua;" .. package.path

local web = require "sprof.web"

---------------------------------------------------------------------------
-- servers

local running = {}  -- started servers not stopped yet

local sleep, alive = h.sleep, h.alive

-- Starts a command in the background with a clean sprof.web environment
-- plus 'env'; stdout and stderr go to files.
local function spawn (cmd, env)
  local pidfile, out, err = h.tmpfile(".pid"), h.tmpfile(".out"), h.tmpfile(".err")
  local vars = { "-u SPROF_WEB", "-u SPROF_WEB_TOKEN", "-u SPROF_WEB_DIR",
                 "LUA_PATH_5_4=" .. h.quote(LUA_PATH), "LUA_CPATH_5_4=" .. h.quote(LUA_CPATH) }
  for k, v in pairs(env or {}) do vars[#vars + 1] = k .. "=" .. h.quote(v) end
  -- timeout: the server ends within 5 minutes whatever happens to us
  assert(os.execute(string.format("env %s timeout 300 %s >%s 2>%s </dev/null & echo $! >%s",
    table.concat(vars, " "), cmd, h.quote(out), h.quote(err), h.quote(pidfile))))
  local proc = { pid = assert(tonumber(h.read(pidfile))), out = out, err = err }
  running[proc] = true
  return proc
end

-- Stops servers (TERM, then KILL after 5 s).
local function stop (...) h.stop_servers(running, { ... }) end
local function stop_all () h.stop_servers(running) end

local free_port = h.free_port

local CURL = h.CURL

local request = h.request

-- The n of /api/items?n=N for which one unprofiled request takes 20 ms
-- or more: tests size their workloads by time, not by counts, as the next
-- machine may be four times as fast. The faster of 3 tries counts (another
-- job may slow one down); N doubles up to the app's limit of 5000.
local function items_n (base)
  local n = 250
  while n < 5000 do
    local best = math.huge
    for _ = 1, 3 do
      local r = h.run(CURL .. " -o /dev/null -w '%{time_total}' "
                      .. h.quote(base .. "/api/items?n=" .. n))
      best = math.min(best, tonumber(r.out) or math.huge)
    end
    if best >= 0.02 then break end  -- so 20 to 40 ms: 27 ms was the size
    n = math.min(2 * n, 5000)
  end
  return n
end

-- lighttpd with mod_magnet running 'script' (a file), on a free port.
local function lighttpd (script, env)
  for _ = 1, 5 do  -- another program may take the port first
    local port = free_port()
    local conf = h.tmpfile(".conf")
    local f = assert(io.open(conf, "w"))
    f:write(string.format([[
server.document-root = %q
server.bind = "127.0.0.1"
server.port = %d
server.modules = ( "mod_magnet" )
magnet.attract-raw-url-to = ( %q )
]], h.tmpdir, port, script))
    f:close()
    local proc = spawn("lighttpd -D -f " .. h.quote(conf), env)
    proc.base = "http://127.0.0.1:" .. port
    if h.wait_ready(proc) then return proc end
    stop(proc)
  end
  error("lighttpd did not start")
end

-- A magnet script: the example app under sprof.web with these options
-- (Lua source of a table), or the example's own script.
local function magnet_script (options)
  if not options then return EXAMPLE .. "/magnet.lua" end
  return h.script("return require('sprof.web').magnet(lighty, require('app').magnet, "
                  .. options .. ")\n")
end

-- The example's lua-http server (examples/web/run-lua-http) on a free port.
local function lua_http (options, env)
  local opts_file = options and h.script("return " .. options .. "\n")
  local vars = { SPROF_BUILD = h.build }
  for k, v in pairs(env or {}) do vars[k] = v end
  local proc = spawn(h.quote(EXAMPLE .. "/run-lua-http") .. " 0"
                     .. (opts_file and " " .. h.quote(opts_file) or ""), vars)
  for _ = 1, 200 do
    local port = (h.read(proc.out) or ""):match("listening on http://127%.0%.0%.1:(%d+)/")
    if port then
      proc.base = "http://127.0.0.1:" .. port
      return proc
    end
    if not alive(proc.pid) then break end
    sleep(0.05)
  end
  stop(proc)
  error("lua-http did not start: " .. (h.read(proc.err) or ""))
end

---------------------------------------------------------------------------
-- reports

local session_of, is_report = h.session_of, h.is_report
local time_in, has_frame = h.session_time, h.has_frame
local files, wait_files = h.files, h.wait_files

-- The hot function of a route is most of its report (of the time it ran,
-- not of the time it was suspended while other requests ran).
local function hot (session, name) h.hot(session, name, "[suspended]") end

local function newdir ()
  local dir = h.tmpfile(".dir")
  assert(os.execute("mkdir -p " .. h.quote(dir)))
  return dir
end

-- The server's log once it has a line matching 'pattern' (lua-http logs
-- a failed handler after the response has gone out), or as it is after 10 s.
local function wait_log (path, pattern)
  for _ = 1, 200 do
    if (h.read(path) or ""):match(pattern) then break end
    sleep(0.05)
  end
  return h.read(path) or ""
end

local NAME = "^%d%d%d%d%d%d%d%d%-%d%d%d%d%d%d%-"  -- date-time-

-- A setup that starts servers: if one fails to start, those already
-- started are stopped before the error goes on.
local function starting (fn) return h.starting(stop_all, fn) end

---------------------------------------------------------------------------

describe("sprof.web, the core", function ()
  it("reads the query string as a server would", function ()
    local v = web.query_values
    assert.are.same({ "" }, v("profile", "profile"))
    assert.are.same({ "" }, v("a=1&profile=&b", "profile"))
    assert.are.same({ "x y", "z" }, v("profile=x+y&a&profile=z", "profile"))
    assert.are.same({ "s3cret" }, v("%70rofile=s3cr%65t", "profile"))
    assert.are.same({}, v("profiler=1&q=profile&xprofile", "profile"))
    assert.are.same({}, v(nil, "profile"))
  end)

  it("profiles only when enabled, with the right token", function ()
    assert.is_false(web.wants({ enabled = false }, "profile"))
    assert.is_true(web.wants({ enabled = true }, "profile"))
    assert.is_true(web.wants({ enabled = true }, "a=1&profile=0"))
    assert.is_false(web.wants({ enabled = true }, nil))
    assert.is_false(web.wants({ enabled = true }, "profiler"))
    assert.is_true(web.wants({ enabled = true }, "%70rofile"))
    local t = { enabled = true, token = "s3cret" }
    assert.is_false(web.wants(t, "profile"))
    assert.is_false(web.wants(t, "profile=s3cre"))
    assert.is_false(web.wants(t, "profile=s3cretx"))
    assert.is_true(web.wants(t, "profile=s3cret"))
    assert.is_true(web.wants(t, "x=1&profile=nope&profile=s3cr%65t"))
  end)

  it("names saved reports by time, method, path and duration", function ()
    local rec = { started = os.time { year = 2026, month = 11, day = 26, hour = 12, min = 3, sec = 4 },
                  method = "GET", path = "/api/items", duration = 0.04213 }
    assert.are.equal("20261126-120304-GET-_api_items-0.042s", web.report_name(rec))
    rec.path, rec.failed = "/a b/<x>/ü", true  -- (ü is two bytes)
    assert.are.equal("20261126-120304-GET-_a_b__x____-0.042s-error", web.report_name(rec))
  end)

  it("checks its options", function ()
    local function err (opts)
      local ok, e = pcall(function ()
        local f = web.lua_http(function () end, opts)
        return f
      end)
      assert.is_false(ok)
      return e
    end
    assert.matches("spec/web_spec.lua:%d+: sprof.web: unknown option 'save'", err { save = "/tmp" })
    assert.matches("option 'token' must be a string, got number", err { token = 1 })
    assert.matches("unknown format 'png'", err { format = "png" })
    assert.matches("unknown format 'svg'", err { format = { "html", "svg" } })
    assert.matches("lua_http wants the onstream function", select(2, pcall(web.lua_http, nil)))
    assert.is_function(web.lua_http(function () end, { enabled = true, format = { "json", "pprof" } }))
  end)
end)

describe("sprof.web on lighttpd (mod_magnet)", function ()
  local off, on, short, envtoken, saving, dir

  lazy_setup(starting(function ()
    dir = newdir()
    off = lighttpd(magnet_script())
    on = lighttpd(magnet_script(), { SPROF_WEB = "1" })
    -- a short request, 10 ms of CPU whatever the machine (the app's own
    -- are sized by work: its home page can end before the first sample)
    short = lighttpd(h.script [[
local function short_request ()
  local t0 = os.clock()
  repeat until os.clock() - t0 >= 0.01
end
return require("sprof.web").magnet(lighty, function (lighty)
  short_request()
  lighty.r.resp_body:set{ "done\n" }
  return 200
end, { enabled = true })
]])
    envtoken = lighttpd(magnet_script(), { SPROF_WEB = "1", SPROF_WEB_TOKEN = "from-env" })
    saving = lighttpd(magnet_script(string.format(
      "{ enabled = true, token = 's3cret', save_dir = %q, format = { 'html', 'json' } }", dir)))
  end))

  lazy_teardown(stop_all)

  it("answers as usual without ?profile", function ()
    for _, server in ipairs { off, on, saving } do
      local r = request(server.base .. "/")
      assert.are.equal(200, r.status)
      assert.matches("<h1>Catalogue</h1>", r.body)
      r = request(server.base .. "/api/items?n=2")
      assert.are.equal("application/json", r.headers["content-type"])
      assert.matches('^{"count":2,"items":%[{', r.body)
    end
  end)

  it("is off unless enabled: ?profile is an ordinary argument then", function ()
    local r = request(off.base .. "/?profile")
    assert.are.equal(200, r.status)
    assert.matches("<h1>Catalogue</h1>", r.body)
  end)

  it("answers ?profile with the report of the request, its hot function first", function ()
    local s = is_report(request(on.base .. "/slow?profile"))
    hot(s, "crunch")
    assert.are.equal("GET /slow", s.program)
    local r = request(on.base .. "/?profile")
    assert.are.equal("no-store", r.headers["cache-control"])
    is_report(r)
    -- a short request: a few samples
    assert.is_true(has_frame(is_report(request(short.base .. "/?profile")), "short_request"))
    hot(is_report(request(on.base .. "/slow?a=1&profile&b=2")), "crunch")
    -- the query is read properly
    is_report(request(on.base .. "/?%70rofile"))
    for _, q in ipairs { "profiler=1", "q=profile", "xprofile" } do
      local r = request(on.base .. "/?" .. q)
      assert.matches("<h1>Catalogue</h1>", r.body, q)
    end
  end)

  it("with a token, profiles only ?profile=TOKEN (option or SPROF_WEB_TOKEN)", function ()
    for _, case in ipairs { { saving, "s3cret" }, { envtoken, "from-env" } } do
      local server, token = case[1], case[2]
      for _, q in ipairs { "profile", "profile=", "profile=wrong", "profile=" .. token .. "x" } do
        local r = request(server.base .. "/api/items?n=2&" .. q)
        assert.are.equal(200, r.status)
        assert.matches('^{"count":2', r.body, q)
      end
    end
    is_report(request(envtoken.base .. "/api/items?profile=from-env"))
    is_report(request(envtoken.base .. "/api/items?profile=from%2Denv"))
  end)

  it("with save_dir, answers as usual and saves the report in each format", function ()
    local before = #files(dir)
    local r = request(saving.base .. "/slow?profile=s3cret")
    assert.are.equal(200, r.status)
    assert.matches("primes up to", r.body)
    local list = wait_files(dir, before + 2)
    local html, json_file
    for _, name in ipairs(list) do
      if name:match(NAME .. "GET%-_slow%-%d+%.%d%d%ds%.html$") then html = name end
      if name:match(NAME .. "GET%-_slow%-%d+%.%d%d%ds%.json$") then json_file = name end
    end
    assert.is_truthy(html, table.concat(list, "\n"))
    assert.are.equal(html:gsub("html$", "json"), json_file)
    local page = assert(h.read(dir .. "/" .. html))
    hot(session_of(page), "crunch")
    local saved = assert(json.decode(assert(h.read(dir .. "/" .. json_file))))
    assert.are.equal("sprof-session", saved.format)
    hot(saved, "crunch")
    -- the name tells the duration
    local secs = tonumber(html:match("%-(%d+%.%d+)s%.html$"))
    assert.is_true(math.abs(secs - saved.duration_ns / 1e9) < 0.002)
    -- no request without the token left a file
    for _, name in ipairs(list) do assert.is_nil(name:match("items"), name) end
  end)

  it("a failing request: report with status 500, the error in the error log", function ()
    local r = request(on.base .. "/boom?profile")
    assert.are.equal(500, r.status)
    assert.are.equal("text/html; charset=utf-8", r.headers["content-type"])
    hot(session_of(r.body), "load_inventory")
    local log = h.read(on.err)
    assert.matches("sprof.web: GET /boom failed: [^\n]*app.lua:%d+: inventory service unavailable", log)
    assert.matches("in upvalue 'load_inventory'", log)
    -- without ?profile: mod_magnet's own error handling
    r = request(on.base .. "/boom")
    assert.are.equal(500, r.status)
    assert.matches("500 Internal Server Error", r.body)
  end)

  it("a failing request with save_dir: mod_magnet's error handling, and the report saved", function ()
    local before = #files(dir)
    local r = request(saving.base .. "/boom?profile=s3cret")
    assert.are.equal(500, r.status)
    assert.matches("500 Internal Server Error", r.body)
    -- mod_magnet logged the error with its own traceback, from where it was raised
    local log = h.read(saving.err)
    assert.matches("%(mod_magnet%.c%.%d+%) lua: [^\n]*app.lua:%d+: inventory service unavailable", log)
    assert.matches("lua: \\t[^\n]*app.lua:%d+: in upvalue 'load_inventory'", log)
    local list = wait_files(dir, before + 2)
    local html
    for _, name in ipairs(list) do
      if name:match(NAME .. "GET%-_boom%-%d+%.%d%d%ds%-error%.html$") then html = name end
    end
    assert.is_truthy(html, table.concat(list, "\n"))
    hot(session_of(assert(h.read(dir .. "/" .. html))), "load_inventory")
    -- the server goes on serving
    assert.are.equal(200, request(saving.base .. "/").status)
  end)
end)

describe("sprof.web on lua-http", function ()
  local on, saving, dir, n

  lazy_setup(starting(function ()
    dir = newdir()
    on = lua_http(nil, { SPROF_WEB = "1" })
    n = items_n(on.base)  -- /api/items?n=n: 20 to 40 ms on 'on'
    saving = lua_http(string.format("{ enabled = true, token = 't0k', save_dir = %q }", dir))
  end))

  lazy_teardown(stop_all)

  it("answers as usual without ?profile", function ()
    for _, server in ipairs { on, saving } do
      local r = request(server.base .. "/")
      assert.are.equal(200, r.status)
      assert.matches("<h1>Catalogue</h1>", r.body)
      r = request(server.base .. "/api/items?n=2&profile")  -- wrong token on 'saving'
      if server == saving then
        assert.are.equal(200, r.status)
        assert.matches('^{"count":2', r.body)
      end
    end
    assert.are.equal(404, request(on.base .. "/nothing").status)
  end)

  it("answers ?profile with the report of the request, its hot function first", function ()
    local s = is_report(request(on.base .. "/slow?profile"))
    hot(s, "crunch")
    assert.are.equal("GET /slow", s.program)
    -- HEAD gets the headers only (curl -I writes them where the body would go)
    local r = request(on.base .. "/?profile", "-I")
    assert.are.equal(200, r.status)
    assert.are.equal("text/html; charset=utf-8", r.headers["content-type"])
    assert.is_nil(r.body:find("<!DOCTYPE", 1, true))
  end)

  it("concurrent requests: a profiled request's report holds only its own handler", function ()
    -- /slow?profile waits between its slices; 8 /api/items run meanwhile
    local out = { h.tmpfile(".slow") }
    local args = { "-o " .. h.quote(out[1]) .. " " .. h.quote(on.base .. "/slow?profile") }
    for i = 1, 8 do
      local f = h.tmpfile(".items")
      out[#out + 1] = f
      args[#args + 1] = "-o " .. h.quote(f) .. " " .. h.quote(on.base .. "/api/items?n=" .. n .. "&i=" .. i)
    end
    local r = h.run(CURL .. " -Z --parallel-immediate --parallel-max 10 -w '%{http_code}\\n' "
                    .. table.concat(args, " "))
    for code in r.out:gmatch("%d+") do assert.are.equal("200", code) end
    local s = session_of(assert(h.read(out[1])))
    hot(s, "crunch")
    for _, name in ipairs { "items", "encode_value", "catalogue" } do
      assert.is_false(has_frame(s, name), name .. " is in the report of /slow")
    end
    -- others ran while it waited: more than its own 10 pauses of 5 ms
    local waited = time_in(s, "[suspended]")
    assert.is_true(waited > 0.07e9, "suspended " .. waited / 1e6 .. " ms")
    for i = 2, #out do assert.matches('^{"count":' .. n .. ',', h.read(out[i])) end

    -- and the other way round: /api/items?profile among /slow requests
    args, out = {}, {}
    for i = 1, 3 do
      args[#args + 1] = "-o /dev/null " .. h.quote(on.base .. "/slow?i=" .. i)
    end
    out[1] = h.tmpfile(".items")
    args[#args + 1] = "-o " .. h.quote(out[1]) .. " " .. h.quote(on.base .. "/api/items?n=" .. n .. "&profile")
    r = h.run(CURL .. " -Z --parallel-immediate -w '%{http_code}\\n' " .. table.concat(args, " "))
    for code in r.out:gmatch("%d+") do assert.are.equal("200", code) end
    s = session_of(assert(h.read(out[1])))
    assert.is_true(has_frame(s, "encode_value"))
    assert.is_false(has_frame(s, "crunch"), "crunch is in the report of /api/items")
  end)

  it("two profiled requests at once: each gets its own report, one after the other", function ()
    local a, b = h.tmpfile(".a"), h.tmpfile(".b")
    local r = h.run(string.format(CURL .. " -Z --parallel-immediate -w '%%{http_code}\\n' -o %s %s -o %s %s",
      h.quote(a), h.quote(on.base .. "/slow?profile"), h.quote(b), h.quote(on.base .. "/api/items?n=" .. n .. "&profile")))
    assert.are.equal("200\n200\n", r.out)
    local sa, sb = session_of(h.read(a)), session_of(h.read(b))
    hot(sa, "crunch")
    assert.is_false(has_frame(sa, "encode_value"))
    assert.is_true(has_frame(sb, "encode_value"))
    assert.is_false(has_frame(sb, "crunch"))
  end)

  it("a failing request: report with status 500, and the server's onerror sees the error", function ()
    local r = request(on.base .. "/boom?profile")
    assert.are.equal(500, r.status)
    assert.are.equal("text/html; charset=utf-8", r.headers["content-type"])
    hot(session_of(r.body), "load_inventory")
    local failed = "onstream on [^\n]* failed: [^\n]*app.lua:%d+: inventory service unavailable"
    assert.matches(failed, wait_log(on.err, failed))
    -- without ?profile: lua-http's own 503
    assert.are.equal(503, request(on.base .. "/boom").status)
  end)

  it("with save_dir: the normal response, the report saved; also when it fails", function ()
    local r = request(saving.base .. "/slow?profile=t0k")
    assert.are.equal(200, r.status)
    assert.matches("primes up to", r.body)
    r = request(saving.base .. "/boom?profile=t0k")
    assert.are.equal(503, r.status)  -- lua-http's answer to a failed handler
    local list = wait_files(dir, 2)
    assert.are.equal(2, #list, table.concat(list, "\n"))
    local slow, boom
    for _, name in ipairs(list) do
      if name:match(NAME .. "GET%-_slow%-%d+%.%d%d%ds%.html$") then slow = name end
      if name:match(NAME .. "GET%-_boom%-%d+%.%d%d%ds%-error%.html$") then boom = name end
    end
    assert.is_truthy(slow and boom, table.concat(list, "\n"))
    hot(session_of(h.read(dir .. "/" .. slow)), "crunch")
    hot(session_of(h.read(dir .. "/" .. boom)), "load_inventory")
    local failed = "onstream on [^\n]* failed: [^\n]*inventory service unavailable"
    assert.matches(failed, wait_log(saving.err, failed))
  end)
end)
