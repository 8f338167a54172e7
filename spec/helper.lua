-- Shared by the specs: run commands, write scripts, read reports.
local helper = {}

local function sh_quote (s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
helper.quote = sh_quote

local function read_all (path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end
helper.read = read_all

local function abspath (p)
  if p:sub(1, 1) == "/" then return p end
  local pwd = os.getenv("PWD") or io.popen("pwd"):read("l")
  return pwd .. "/" .. p
end

helper.build = abspath(os.getenv("SPROF_BUILD") or "build")
helper.root = abspath(".")
-- SPROF_LUA=5.3 (or 5.1) runs the programs the specs start on that Lua,
-- with what the build made for it: lua5.3, sprof-lua5.3, lua5.3/sprof.so.
-- busted itself stays on lua5.4.
helper.lua_version = os.getenv("SPROF_LUA") or "5.4"
helper.lua = "lua" .. helper.lua_version
local other = helper.lua_version ~= "5.4"
helper.sprof_lua = helper.build .. "/sprof-lua" .. (other and helper.lua_version or "")
-- the test modules (sleepy) and the sprof module, for child processes
if other then
  local sub = "/lua" .. helper.lua_version
  helper.cpath = helper.build .. sub .. "/?.so;" .. helper.build .. "/spec"
    .. sub .. "/?.so;;"
else
  helper.cpath = helper.build .. "/?.so;" .. helper.build .. "/spec/?.so;"
    .. package.cpath
end

-- Everything the specs write goes into one new directory under $TMPDIR,
-- removed when busted closes its Lua state at exit (the registry outlives
-- the insulation of each spec file, which drops this module).
local tmpdir = io.popen('mktemp -d "${TMPDIR:-/tmp}/sprof-spec.XXXXXX"'):read("l")
assert(tmpdir, "cannot make a temporary directory: check TMPDIR")
debug.getregistry()["spec.helper " .. tmpdir] = setmetatable({}, {
  __gc = function () os.execute("rm -rf " .. sh_quote(tmpdir)) end })
helper.tmpdir = tmpdir
local counter = 0

-- Lua code defining hot_spot(secs), busy for that much CPU time, for the
-- scripts the specs run.
helper.HOT_SPOT = [[
local function hot_spot (secs)
  local x, stop = 0, os.clock() + secs
  while os.clock() < stop do
    for i = 1, 10000 do x = x + i % 7 end
  end
  return x
end
]]

-- A new directory under the spec's temporary one that anyone may write:
-- servers started as root serve as another user (nobody, www-data).
function helper.shared_dir ()
  local dir = helper.tmpfile(".dir")
  assert(os.execute("mkdir -m 777 " .. sh_quote(dir)))
  return dir
end

function helper.tmpfile (suffix)
  counter = counter + 1
  return string.format("%s/f%d%s", tmpdir, counter, suffix or "")
end

function helper.write (path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

-- go tool pprof with these arguments. go is a static binary: it needs none
-- of the sanitizer preloads CI puts around lua5.4 (and would print their
-- noise).
function helper.go_pprof (args)
  return helper.run("env -u LD_PRELOAD -u ASAN_OPTIONS -u UBSAN_OPTIONS "
                    .. "HOME=" .. sh_quote(tmpdir) .. " go tool pprof " .. args)
end

-- Writes a Lua script and returns its path.
function helper.script (code)
  local path = helper.tmpfile(".lua")
  local f = assert(io.open(path, "w"))
  f:write(code)
  f:close()
  return path
end

-- Runs a shell command; returns { out =, err =, status = }. sprof-lua
-- keeps its sessions under XDG_STATE_HOME: in the temporary directory.
function helper.run (cmd, env)
  local out, err = helper.tmpfile(".out"), helper.tmpfile(".err")
  local prefix = "export LUA_CPATH=" .. sh_quote(helper.cpath) .. "; "
    .. "export XDG_STATE_HOME=" .. sh_quote(tmpdir .. "/state") .. "; "
  for k, v in pairs(env or {}) do
    prefix = prefix .. "export " .. k .. "=" .. sh_quote(v) .. "; "
  end
  local full = string.format("%s{ %s; } >%s 2>%s </dev/null", prefix, cmd,
                             sh_quote(out), sh_quote(err))
  local ok, how, code = os.execute(full)
  local status = how == "exit" and code or 128 + code
  return { out = read_all(out) or "", err = read_all(err) or "",
           status = status, ok = ok }
end

-- Runs sprof-lua with the given options (a string) on a script.
function helper.sprof (opts, script, args, env)
  return helper.run(string.format("%s %s %s %s", sh_quote(helper.sprof_lua),
                                  opts or "", sh_quote(script), args or ""), env)
end

-- Parses collapsed stacks: a list of { frames = {...}, us = n } and total.
function helper.collapsed (text)
  local stacks, total = {}, 0
  for line in text:gmatch("[^\n]+") do
    local path, us = line:match("^(.*) (%d+)$")
    assert(path, "not a collapsed line: " .. line)
    local frames = {}
    for f in (path .. ";"):gmatch("([^;]*);") do frames[#frames + 1] = f end
    stacks[#stacks + 1] = { frames = frames, us = tonumber(us) }
    total = total + tonumber(us)
  end
  return stacks, total
end

-- Time (us) of the stacks that pass through a frame whose name matches
-- 'name' exactly (the name is what comes before " file:line").
local function frame_name (f)
  -- names have no spaces but "(main chunk)"-like ones; files may have
  return f:match("^(%(.-%))") or f:match("^(%S+)")
end
helper.frame_name = frame_name

function helper.time_in (stacks, name, under)
  local sum = 0
  for _, s in ipairs(stacks) do
    for i, f in ipairs(s.frames) do
      if frame_name(f) == name
         and (under == nil or (i > 1 and frame_name(s.frames[i - 1]) == under)) then
        sum = sum + s.us
        break
      end
    end
  end
  return sum
end

-- Time (us) of the stacks that pass through each name in 'path', in order
-- (not necessarily adjacent); a name starting with "^" is a pattern.
local function is (name, wanted)
  return name == wanted or (wanted:sub(1, 1) == "^" and name:match(wanted) ~= nil)
end

function helper.time_along (stacks, path)
  local sum = 0
  for _, s in ipairs(stacks) do
    local want = 1
    for _, f in ipairs(s.frames) do
      if is(frame_name(f), path[want]) then want = want + 1 end
      if want > #path then break end
    end
    if want > #path then sum = sum + s.us end
  end
  return sum
end

-- Time (us) of the stacks whose innermost frame is 'name'.
function helper.self_in (stacks, name)
  local sum = 0
  for _, s in ipairs(stacks) do
    if frame_name(s.frames[#s.frames]) == name then sum = sum + s.us end
  end
  return sum
end

-- The lines of a text report as { seconds, percent, name, where }.
function helper.text_lines (text)
  local lines = {}
  for line in text:gmatch("[^\n]+") do
    local secs, pct, rest = line:match("(%d+%.%d+)%s+(%d+%.%d)%%%s+(.*)$")
    if secs then
      local name, where = rest:match("^(.-)  (%S+)")
      lines[#lines + 1] = { seconds = tonumber(secs), percent = tonumber(pct),
                            name = name or rest, where = where }
    end
  end
  return lines
end

function helper.find_line (lines, name)
  for _, l in ipairs(lines) do if l.name == name then return l end end
end

-- A port nobody listens on now (the kernel's choice).
function helper.free_port ()
  local socket = require "cqueues.socket"
  local s = socket.listen { host = "127.0.0.1", port = 0 }
  assert(s:listen())
  local _, _, port = s:localname()
  s:close()
  return port
end

-- curl without the sanitizer preloads CI puts around lua5.4 (curl hangs
-- with them); the servers keep them: the sanitized sprof.so needs them.
helper.CURL = "env -u LD_PRELOAD -u ASAN_OPTIONS -u UBSAN_OPTIONS curl -s -m 60"

---------------------------------------------------------------------------
-- Real servers and their reports (web, Apache and HAProxy specs).

function helper.sleep (s) os.execute("sleep " .. s) end

function helper.alive (pid)
  return os.execute("kill -0 " .. pid .. " 2>/dev/null") == true
end

-- Stops the servers 'procs' (all when nil) still in 'running', the set
-- of those started under `timeout`: TERM to all (lighttpd takes up to a
-- second to see it), then waits for each; KILL to what is left after 5 s.
function helper.stop_servers (running, procs)
  if not procs then
    procs = {}
    for proc in pairs(running) do procs[#procs + 1] = proc end
  end
  for _, proc in ipairs(procs) do
    if running[proc] then os.execute("kill -TERM " .. proc.pid .. " 2>/dev/null") end
  end
  for _, proc in ipairs(procs) do
    if running[proc] then
      running[proc] = nil
      for _ = 1, 100 do
        if not helper.alive(proc.pid) then break end
        helper.sleep(0.05)
      end
      if helper.alive(proc.pid) then  -- the server (timeout's child), then timeout
        local children = read_all("/proc/" .. proc.pid .. "/task/" .. proc.pid .. "/children") or ""
        for child in children:gmatch("%d+") do os.execute("kill -KILL " .. child .. " 2>/dev/null") end
        os.execute("kill -KILL " .. proc.pid .. " 2>/dev/null")
      end
    end
  end
end

-- Waits until the server at proc.base answers (or gives up after 10 s, or
-- when it has ended); true when it does.
function helper.wait_ready (proc)
  for _ = 1, 200 do
    if not helper.alive(proc.pid) then return false end
    if helper.request(proc.base .. "/ready-check").status then return true end
    helper.sleep(0.05)
  end
  return false
end

-- A setup that starts servers: if one fails to start, stop_all() stops
-- those already started before the error goes on.
function helper.starting (stop_all, fn)
  return function ()
    local ok, err = pcall(fn)
    if not ok then
      stop_all()
      error(err, 0)
    end
  end
end

-- One HTTP request, with curl options 'extra'; { status =, body =,
-- headers = { lower-case name = value }, time = seconds }. status is nil
-- when no response came.
function helper.request (url, extra)
  local body, head = helper.tmpfile(".body"), helper.tmpfile(".head")
  local r = helper.run(string.format(
    helper.CURL .. " %s -o %s -D %s -w '%%{http_code} %%{time_total}' %s",
    extra or "", sh_quote(body), sh_quote(head), sh_quote(url)))
  local headers = {}
  for name, value in (read_all(head) or ""):gmatch("([%w%-]+):%s*([^\r\n]*)") do
    headers[name:lower()] = value
  end
  local status, time = r.out:match("^(%d+) ([%d.]+)")
  status = tonumber(status)
  return { status = status ~= 0 and status or nil, body = read_all(body) or "",
           headers = headers, time = tonumber(time) }
end

-- The session inside an HTML report (dkjson loaded only by the specs
-- that read reports).
function helper.session_of (page)
  local text = page:match('<script[^>]- id="sprof%-data"[^>]*>(.-)</script>')
  assert(text, "no session in the page: " .. page:sub(1, 200))
  return assert(require("dkjson").decode(text))
end

-- The session of a response that must be an HTML report. (busted's
-- assert is luassert; the global one here is Lua's.)
function helper.is_report (r)
  local assert = require "luassert"
  assert.are.equal(200, r.status)
  assert.are.equal("text/html; charset=utf-8", r.headers["content-type"])
  assert.matches("^<!DOCTYPE html>", r.body)
  return helper.session_of(r.body)
end

-- Time (ns) of the session's stacks through a frame called 'name', and
-- of all its stacks.
function helper.session_time (session, name)
  local sum, total = 0, 0
  for _, s in ipairs(session.stacks) do
    total = total + s.weight_ns
    for _, i in ipairs(s.frames) do
      if session.frames[i + 1].name == name then sum = sum + s.weight_ns break end
    end
  end
  return sum, total
end

function helper.has_frame (session, name)
  for _, f in ipairs(session.frames) do
    if f.name == name then return true end
  end
  return false
end

-- Asserts that the function 'name' is most of the session's time, leaving
-- out the time of the frame 'not_counted' (the time Lua did not run:
-- "[suspended]" between slices of a request, "(outside Lua)" in a whole
-- state's profile).
-- The session's stacks, a line each, for a failure's message.
function helper.stacks_of (session)
  local lines = {}
  for _, st in ipairs(session.stacks) do
    local names = {}
    for _, i in ipairs(st.frames) do names[#names + 1] = session.frames[i + 1].name end
    lines[#lines + 1] = string.format("%9.3f ms  %s", st.weight_ns / 1e6, table.concat(names, ";"))
  end
  return table.concat(lines, "\n")
end

function helper.hot (session, name, not_counted)
  local assert = require "luassert"
  local t, total = helper.session_time(session, name)
  total = total - helper.session_time(session, not_counted)
  assert.is_true(total > 0, helper.stacks_of(session))
  assert.is_true(t / total > 0.5, string.format("%s: %.0f%% of the report; its stacks:\n%s",
    name, 100 * t / total, helper.stacks_of(session)))
end

-- The names of the files in 'dir', sorted.
function helper.files (dir)
  local list = {}
  local p = io.popen("ls -1 " .. sh_quote(dir))
  for name in p:lines() do list[#list + 1] = name end
  p:close()
  table.sort(list)
  return list
end

-- Waits (up to 10 s) until 'dir' holds n files; returns their names.
function helper.wait_files (dir, n)
  for _ = 1, 200 do
    if #helper.files(dir) >= n then break end
    helper.sleep(0.05)
  end
  return helper.files(dir)
end

return helper
