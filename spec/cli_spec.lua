-- sprof-lua: runs a script as lua5.4 would, and reports.
local h = require "spec.helper"

local function lua (script, args)
  return h.run("lua5.4 " .. h.quote(script) .. " " .. (args or ""))
end

-- Work sized by CPU time, not by a count, so it is the same on any machine.
local busy = [[
local function busy (secs)
  local x, stop = 0, os.clock() + (secs or 0.1)
  repeat for i = 1, 1000 do x = x + i % 5 end until os.clock() >= stop
  return 0
end
]]

describe("sprof-lua", function ()
  it("runs the script with arg and ... as lua5.4 sets them", function ()
    local script = h.script [[
print(arg[0] == (...) and "same" or "args", #arg, arg[1], arg[2], select("#", ...), ...)
]]
    local plain = lua(script, "one 'two words'")
    local profiled = h.sprof("-o " .. h.quote(h.tmpfile()), script, "one 'two words'")
    assert.are.equal(0, profiled.status, profiled.err)
    assert.are.equal(plain.out, profiled.out)
    assert.matches("2\tone\ttwo words\t2\tone\ttwo words", profiled.out)
  end)

  it("leaves stdout to the script and writes the report to stderr", function ()
    local script = h.script(busy .. "busy() print('done')")
    local r = h.sprof("", script)
    assert.are.equal("done\n", r.out)
    assert.matches("busy  .*:1", r.err)
  end)

  it("keeps output, errors, tracebacks and the exit status of a failing script", function ()
    local script = h.script(busy .. [[
io.write("partial output\n")
local function fail () error("boom: " .. busy()) end
fail()
]])
    local report = h.tmpfile(".txt")
    local plain = lua(script)
    local profiled = h.sprof("-o " .. h.quote(report), script)
    assert.are.equal(plain.status, profiled.status)
    assert.are.equal(1, profiled.status)
    assert.are.equal(plain.out, profiled.out)
    assert.are.equal(plain.err:gsub("^lua5.4: ", ""),
                     profiled.err:gsub("^" .. h.sprof_lua:gsub("%p", "%%%0") .. ": ", ""))
    assert.matches("stack traceback:", profiled.err)
    -- the report of what ran is still written
    assert.matches("busy", h.read(report))
  end)

  it("exits with the status given to os.exit, and still reports", function ()
    for _, close in ipairs { "false", "true" } do
      local script = h.script(busy .. "busy() os.exit(3, " .. close .. ")")
      local report = h.tmpfile(".txt")
      local r = h.sprof("-o " .. h.quote(report), script)
      assert.are.equal(3, r.status)
      assert.matches("busy", h.read(report) or "")
    end
  end)

  it("on Ctrl-C stops like lua5.4 and reports what ran", function ()
    local script = h.script(busy .. "while true do busy() end")
    local report = h.tmpfile(".txt")
    local function interrupted (cmd)
      return h.run("(" .. cmd .. " & pid=$!; sleep 1; kill -INT $pid; wait $pid)")
    end
    local r = interrupted(h.quote(h.sprof_lua) .. " -o " .. h.quote(report) .. " " .. h.quote(script))
    local plain = interrupted("lua5.4 " .. h.quote(script))
    assert.are.equal(1, plain.status)
    assert.are.equal(plain.status, r.status)
    assert.matches("interrupted!", r.err)
    assert.matches("busy", h.read(report) or "")
  end)

  it("never makes a sleep, poll or read fail with EINTR", function ()
    local script = h.script [[
local sleepy = require "sleepy"
local x = 0
for round = 1, 5 do
  local stop = os.clock() + 0.02              -- running: signals arrive
  repeat x = x + 1 until os.clock() >= stop
  assert(sleepy.nanosleep(0.05))               -- blocked: none may land
  assert(sleepy.poll(30))
  local f = assert(io.popen("sleep 0.03; echo data"))
  assert(f:read("l") == "data")
  f:close()
end
local r, w = io.popen("sleep 0.05; echo pipe"), nil
assert(r:read("a") == "pipe\n")
print("no EINTR")
]]
    for _, clock in ipairs { "wall", "cpu" } do
      local r = h.sprof("--clock " .. clock .. " -i 0.0005 -o /dev/null", script)
      assert.are.equal(0, r.status, r.err)
      assert.are.equal("no EINTR\n", r.out)
    end
  end)

  it("renders collapsed and json, and --load re-renders and sums sessions", function ()
    local script = h.script(busy .. "busy() busy()")
    local json = h.tmpfile(".json")
    local r = h.sprof("-r json -o " .. h.quote(json), script)
    assert.are.equal(0, r.status, r.err)
    local one = h.run(h.quote(h.sprof_lua) .. " --load " .. h.quote(json) .. " -r collapsed -o -")
    assert.are.equal(0, one.status, one.err)
    local stacks, total = h.collapsed(one.out)
    assert.is_true(h.time_in(stacks, "busy") > 0.8 * total)
    local two = h.run(h.quote(h.sprof_lua) .. " --load " .. h.quote(json) .. " --load "
                      .. h.quote(json) .. " -r collapsed -o -")
    local _, total2 = h.collapsed(two.out)
    assert.is_true(math.abs(total2 - 2 * total) <= #stacks)
    local text = h.run(h.quote(h.sprof_lua) .. " --load " .. h.quote(json))
    assert.matches("busy", text.err)
  end)

  it("shows library frames only with --show-all", function ()
    local lib = h.tmpdir .. "/share/lua/5.4"
    assert(os.execute("mkdir -p " .. h.quote(lib)))
    local f = assert(io.open(lib .. "/fakelib.lua", "w"))
    f:write [[
local M = {}
local function inner (cb)
  local x = 0
  local stop = os.clock() + 0.02 repeat x = x + 1 until os.clock() >= stop
  local y = cb()
  return y
end
function M.run (cb) local r = inner(cb) return r end
return M
]]
    f:close()
    local script = h.script(busy .. "package.path = " .. string.format("%q", lib .. "/?.lua;")
                            .. " .. package.path\nrequire('fakelib').run(busy)")
    local grouped = h.sprof("", script)
    assert.matches("M.run  .-fakelib.lua:8  %[%d+ frames? hidden: .-fakelib.lua%]", grouped.err)
    assert.is_nil(grouped.err:find("inner", 1, true))
    assert.matches("busy", grouped.err)
    local all = h.sprof("--show-all", script)
    assert.matches("inner", all.err)
  end)

  describe("refuses bad input with one clear line and a non-zero exit", function ()
    local function refused (opts, script, pattern)
      local r = h.sprof(opts, script)
      assert.are_not.equal(0, r.status)
      assert.matches(pattern, r.err)
      return r
    end
    local ok_script = h.script("print('ran')")

    it("a missing script", function ()
      refused("", "/nonexistent/script.lua", "cannot open /nonexistent/script.lua")
    end)
    it("a syntax error", function ()
      local r = refused("", h.script("local x = = 1"), "unexpected symbol near '='")
      assert.are.equal(1, select(2, r.err:gsub("\n", "")))
    end)
    it("an unknown renderer", function ()
      refused("-r xml", ok_script, "unknown renderer 'xml' %(use text, html, collapsed, json, speedscope or pprof%)")
    end)
    it("a bad interval", function ()
      refused("-i 0", ok_script, "interval must be a positive number")
      refused("-i fast", ok_script, "interval must be a positive number")
      refused("-i 100", ok_script, "interval must be")
    end)
    it("an unknown clock", function ()
      refused("--clock gpu", ok_script, "unknown clock 'gpu'")
    end)
    it("an unwritable output path, before running the script", function ()
      local r = refused("-o /nonexistent/dir/out.txt", ok_script, "cannot write the report to '/nonexistent/dir/out.txt'")
      assert.are.equal("", r.out)
    end)
    it("an unreadable session", function ()
      local r = h.run(h.quote(h.sprof_lua) .. " --load " .. h.quote(ok_script))
      assert.are_not.equal(0, r.status)
      assert.matches("cannot load .*not valid JSON", r.err)
    end)
    it("nothing to run on a terminal (there is no interactive mode)", function ()
      -- script(1) gives the command a terminal, where lua5.4 would start its REPL
      for _, opts in ipairs { "", "-l string" } do
        local r = h.run("script -qec " .. h.quote(h.quote(h.sprof_lua) .. " " .. opts) .. " /dev/null")
        assert.are.equal(2, r.status, r.out)
        assert.matches("no script given: name a script, give %-e stat, or '%-' to read stdin", r.out)
      end
    end)
    it("an option of lua5.4's without its argument, and lua5.4's -i", function ()
      for _, case in ipairs {
        { "-e", "'%-e' needs an argument" },
        { "-l -e 1", "'%-l' needs an argument" },
        { "-Ex", "unknown option '%-Ex'" },
        { "-i " .. h.quote(ok_script), "interval must be a positive number of seconds, "
          .. "not '.-' %(%-i is the interval: there is no interactive mode%)" },
      } do
        local r = h.run(h.quote(h.sprof_lua) .. " " .. case[1])
        assert.are.equal(2, r.status, case[1])
        assert.matches(case[2], r.err)
        assert.are.equal(2, select(2, r.err:gsub("\n", "")))  -- and "Try '... --help'."
      end
    end)
    it("--load with code to run", function ()
      local r = refused("--load x.json -e", "print(1)", "%-%-load re%-renders a saved session: give it no script and no lua options")
      assert.are.equal(2, r.status)
    end)
  end)

  describe("takes what lua5.4 takes before the script", function ()
    -- modules on LUA_PATH, as -l finds them
    local mods = h.tmpdir .. "/mods"
    assert(os.execute("mkdir -p " .. h.quote(mods)))
    local function module (name, code)
      local f = assert(io.open(mods .. "/" .. name .. ".lua", "w"))
      f:write(code)
      f:close()
    end
    module("mymod", [[
local M = {}
function M.run (...) print("run", ...) end
print("loading", ...)
return M
]])
    module("workmod", [[
local function spin (secs)
  local stop = os.clock() + secs
  repeat until os.clock() >= stop
end
local function warm_up () spin(0.05) end
local M = {}
function M.run () spin(0.1) end
warm_up()
return M
]])
    local env = { LUA_PATH = mods .. "/?.lua;;", LUA_INIT = "print('init')" }
    local args_script = h.script [[
print("script", arg[0] == (...) and "same" or "args", #arg, ...)
]]
    local stdin_script = h.script [[
local function from_stdin ()
  local stop = os.clock() + 0.05
  repeat until os.clock() >= stop
end
from_stdin()
print("stdin", ...)
]]

    -- Runs 'lua5.4 ARGS' and 'sprof-lua -o REPORT ARGS'.
    local function both (args, stdin, report)
      local input = stdin and " <" .. h.quote(stdin) or ""
      report = report or h.tmpfile(".txt")
      return h.run("lua5.4 " .. args .. input, env),
             h.run(h.quote(h.sprof_lua) .. " -o " .. h.quote(report) .. " " .. args .. input, env),
             report
    end

    -- the program's name starts lua5.4's messages, sprof-lua's path ours
    local function messages (err, prog)
      return ("\n" .. err):gsub("\n" .. prog:gsub("%p", "%%%0") .. ": ", "\nPROG: ")
    end

    local function same_as_lua (plain, profiled, what)
      assert.are.equal(plain.status, profiled.status, what .. "\n" .. profiled.err)
      assert.are.equal(plain.out, profiled.out, what)
      assert.are.equal(messages(plain.err, "lua5.4"), messages(profiled.err, h.sprof_lua), what)
    end

    it("-e, -l, -l g=mod, -W, -E, -v, - and -- run as under lua5.4, after LUA_INIT", function ()
      local s = h.quote(args_script)
      for _, args in ipairs {
        "-l mymod -e 'mymod.run(\"x\")'",
        "-l g=mymod -e 'print(g ~= nil, mymod)'",
        "-lmymod '-eprint(mymod ~= nil)' -e 'print(2)'",
        "-e 'print(1)' -l mymod -e 'print(mymod ~= nil)' " .. s .. " a 'b c'",
        "-e 'arg[1] = \"changed\"' " .. s .. " a b",
        "-- " .. s .. " a b",
        "-l mymod -- " .. s .. " -e x",
        "-W -e 'warn(\"on\")'",
        "-e 'warn(\"off\")' -W -e 'warn(\"on\")'",
        "-E -e 'print(package.path)'",
        "-E -l mymod",
        "-v -e 'print(1)'",
        "-v",
        "-e 'error(\"boom\")'",
        "-e 'os.exit(4)'",
        "-e 'print(1)' /nonexistent/script.lua",
        "-e 'arg = nil' " .. s,
        "-- -",
      } do
        local plain, profiled = both(args)
        same_as_lua(plain, profiled, args)
      end
    end)

    it("reads the script from stdin with -, or with no script and no -e", function ()
      for _, args in ipairs { "- a b", "-l mymod", "-l mymod - a", "" } do
        local report = h.tmpfile(".collapsed")
        local plain, profiled = both(args, stdin_script, report)
        same_as_lua(plain, profiled, args)
        assert.matches("stdin", profiled.out)
        local stacks = h.collapsed(h.read(report))
        assert.is_true(h.time_in(stacks, "from_stdin") >= 25000, args)
        assert.matches("from_stdin stdin:1", h.read(report), 1, true)
      end
    end)

    it("fails as lua5.4 on a -e that does not compile and a -l module that is not found", function ()
      for _, case in ipairs {
        { "-e 'x = = 1'", "^PROG: %(command line%):1: unexpected symbol near '='\n$" },
        { "-l nosuch", "^PROG: module 'nosuch' not found:\n\tno field package.preload%['nosuch'%]\n.*stack traceback:\n" },
        { "-e 'print(1)' -l nosuch " .. h.quote(args_script), "^PROG: module 'nosuch' not found:" },
      } do
        local plain, profiled = both(case[1])
        same_as_lua(plain, profiled, case[1])
        assert.are.equal(1, profiled.status)
        assert.matches(case[2], messages(profiled.err, h.sprof_lua):sub(2))
        assert.is_nil(profiled.out:find("script", 1, true))  -- what followed did not run
      end
    end)

    it("gives the script the arg table lua5.4 gives it, sprof-lua's options below the script", function ()
      local show = h.script [[
local t = {}
for i = -10, 10 do if arg[i] then t[#t + 1] = i .. "=" .. arg[i] end end
print(table.concat(t, " "))
]]
      local dump = "local t = {} for i = -10, 10 do if arg[i] then t[#t + 1] = i .. '=' .. arg[i] end end print(table.concat(t, ' '))"
      for _, args in ipairs {
        "-e " .. h.quote(dump),
        "-l mymod " .. h.quote(show) .. " one 'two words'",
        "-e 'x = 1' -- " .. h.quote(show) .. " -e",
      } do
        local report = h.tmpfile(".txt")
        local plain, profiled = both(args, nil, report)
        assert.are.equal(0, profiled.status, profiled.err)
        -- lua5.4's own "lua5.4" becomes the command and its -o option
        local function entries (out)
          local list, zero = {}, nil
          for i, v in out:match("[^\n]*\n$"):gmatch("(%-?%d+)=(%S+)") do
            list[#list + 1] = v
            if i == "0" then zero = #list end
          end
          return list, zero
        end
        local want, want_zero = entries(plain.out)
        local got, got_zero = entries(profiled.out)
        assert.are.equal("lua5.4", want[1])
        table.remove(want, 1)
        for i, v in ipairs { report, "-o", h.sprof_lua } do table.insert(want, 1, v) end
        assert.are.same(want, got, args)
        -- arg[0] is the script, or with none the command
        assert.are.equal(want_zero == 1 and 1 or want_zero + 2, got_zero, args)
      end
    end)

    it("profiles the -e and -l code, not only the script", function ()
      local report = h.tmpfile(".collapsed")
      local plain, profiled = both("-l workmod -e 'workmod.run()'", nil, report)
      same_as_lua(plain, profiled, "workmod")
      local text = h.read(report)
      local stacks = h.collapsed(text)
      -- the module's main chunk under require, the -e chunk's call
      assert.is_true(h.time_along(stacks, { "require", "(main chunk)", "warm_up", "spin" }) >= 25000)
      assert.is_true(h.time_along(stacks, { "(main chunk)", "M.run", "spin" }) >= 50000)
      assert.matches("%(main chunk%) %(command line%):0;M.run ", text)
      local header = h.run(h.quote(h.sprof_lua) .. " -l workmod -e 'workmod.run()'", env)
      assert.matches("sprof  %-l workmod %-e workmod.run%(%)\n", header.err)
    end)
  end)

  describe("picks the renderer from the output file's name when -r is not given", function ()
    local work = "-e 'local function ext_work () local stop = os.clock() + 0.03 "
                 .. "repeat until os.clock() >= stop end ext_work()'"
    local function write (name, opts)
      local path = h.tmpfile("") .. name
      local r = h.run(h.quote(h.sprof_lua) .. " " .. (opts or "") .. " -o " .. h.quote(path) .. " " .. work)
      assert.are.equal(0, r.status, r.err)
      return h.read(path)
    end
    local function is_html (s) return s:find("^<!DOCTYPE html>") ~= nil end
    local function is_json (s)
      return s:find('^{"format":%s*"sprof%-session"') ~= nil and s:find("ext_work", 1, true) ~= nil
    end
    local function is_speedscope (s)
      return s:find("speedscope.app/file-format-schema.json", 1, true) ~= nil
             and s:find("ext_work", 1, true) ~= nil
    end
    local function is_pprof (s)
      if s:sub(1, 2) ~= "\31\139" then return false end  -- gzip
      local path = h.tmpfile(".pb.gz")
      local f = assert(io.open(path, "wb"))
      f:write(s)
      f:close()
      local raw = h.run("gzip -dc " .. h.quote(path)).out
      return raw:sub(1, 1) ~= "{" and raw:find("ext_work", 1, true) ~= nil
    end
    local function is_collapsed (s)
      return h.time_in((h.collapsed(s)), "ext_work") > 0
    end
    local function is_text (s)
      return s:find("^%s*sprof  ") ~= nil and s:find("Recorded:", 1, true) ~= nil
             and s:find("ext_work", 1, true) ~= nil
    end

    for _, case in ipairs {
      { "p.html", is_html }, { "p.htm", is_html },
      { "p.json", is_json }, { "p.speedscope.json", is_speedscope },
      { "p.pb.gz", is_pprof }, { "p.pb", is_pprof }, { "p.pprof", is_pprof },
      { "p.collapsed", is_collapsed }, { "p.folded", is_collapsed },
      { "p.txt", is_text }, { "p.out", is_text }, { "p", is_text },
    } do
      it(case[1], function ()
        assert.is_true(case[2](write(case[1])))
      end)
    end

    it("-r always wins", function ()
      assert.is_true(is_collapsed(write("p.html", "-r collapsed")))
      assert.is_true(is_text(write("p.json", "-r text")))
      assert.is_true(is_json(write("p.speedscope.json", "-r json")))
    end)

    it("--load and --load-prev follow it too", function ()
      local json = h.tmpfile(".json")
      assert.are.equal(0, h.run(h.quote(h.sprof_lua) .. " -o " .. h.quote(json) .. " " .. work).status)
      local out = h.tmpfile(".speedscope.json")
      local r = h.run(h.quote(h.sprof_lua) .. " --load " .. h.quote(json) .. " -o " .. h.quote(out))
      assert.are.equal(0, r.status, r.err)
      assert.is_true(is_speedscope(h.read(out)))
      out = h.tmpfile(".pb.gz")
      r = h.run(h.quote(h.sprof_lua) .. " --load-prev -o " .. h.quote(out))
      assert.are.equal(0, r.status, r.err)
      assert.is_true(is_pprof(h.read(out)))
    end)

    it("--open follows it too", function ()
      local bin, opened = h.tmpfile(".bin"), h.tmpfile(".opened")
      assert(os.execute("mkdir -p " .. h.quote(bin)))
      local f = assert(io.open(bin .. "/xdg-open", "w"))
      f:write("#!/bin/sh\nprintf '%s' \"$1\" >" .. h.quote(opened .. ".tmp") .. " && mv "
              .. h.quote(opened .. ".tmp") .. " " .. h.quote(opened) .. "\n")
      f:close()
      assert(os.execute("chmod +x " .. h.quote(bin .. "/xdg-open")))
      local out = h.tmpfile(".html")
      local r = h.run(h.quote(h.sprof_lua) .. " --open -o " .. h.quote(out) .. " " .. work,
                      { PATH = bin .. ":" .. os.getenv("PATH") })
      assert.are.equal(0, r.status, r.err)
      local deadline = os.time() + 10  -- xdg-open is not waited for
      while not h.read(opened) and os.time() < deadline do os.execute("sleep 0.05") end
      assert.are.equal(out, h.read(opened))
      assert.is_true(is_html(h.read(out)))
      -- an extension that is not html's is refused before anything runs
      r = h.run(h.quote(h.sprof_lua) .. " --open -o " .. h.quote(h.tmpfile(".json")) .. " " .. work,
                { PATH = bin .. ":" .. os.getenv("PATH") })
      assert.are.equal(2, r.status)
      assert.matches("%-%-open shows an html report: add %-r html or %-o FILE%.html", r.err)
    end)
  end)

  describe("man page sprof-lua(1)", function ()
    local page = h.root .. "/runtime/sprof-lua.1"
    -- (not under the sanitizers' LD_PRELOAD, which groff and cmake do not pass)
    local function tool (cmd) return h.run("env -u LD_PRELOAD " .. cmd) end
    local function need (tool, package)
      assert(h.run("command -v " .. tool).status == 0,
             "the man page spec needs " .. tool .. ": apt-get install " .. package)
    end

    it("renders without warnings", function ()
      need("groff", "groff-base")
      need("man", "man-db")
      local g = tool("groff -man -ww -z " .. h.quote(page))
      assert.are.equal(0, g.status)
      assert.are.equal("", g.err)
      local m = tool("LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l " .. h.quote(page))
      assert.are.equal(0, m.status, m.err)
      assert.are.equal("", m.err)
      assert.matches("sprof%-lua %- run Lua 5%.4 code under the sprof sampling profiler", m.out)
    end)

    it("has an entry for every option --help lists", function ()
      need("man", "man-db")
      local help = h.run(h.quote(h.sprof_lua) .. " --help")
      local listed = {}
      for line in help.out:gmatch("[^\n]+") do
        local indent, first = line:match("^( +)(%-%-?[%w%-]*)")
        if indent and #indent <= 6 then
          listed[#listed + 1] = first
          listed[#listed + 1] = line:match("^ +%-%w, (%-%-[%w%-]+)")
        end
      end
      assert.is_true(#listed >= 20, "too few options parsed from --help")
      local man = tool("LC_ALL=C MANWIDTH=80 man -l " .. h.quote(page)).out
      local options = assert(man:match("\nOPTIONS\n(.-)\nENVIRONMENT\n"),
                             "the rendered page has no OPTIONS section before ENVIRONMENT")
      local entries = {}
      for line in options:gmatch("[^\n]+") do
        local first = line:match("^       (%-%-?[%w%-]*)")
        if first then
          entries[first] = true
          local long = line:match("^       %-%w, (%-%-[%w%-]+)")
          if long then entries[long] = true end
        end
      end
      for _, option in ipairs(listed) do
        assert.is_true(entries[option] ~= nil, "the man page has no entry for " .. option)
      end
    end)

    it("is installed under share/man/man1", function ()
      local prefix = h.tmpfile(".prefix")
      local r = tool("cmake --install " .. h.quote(h.build) .. " --prefix " .. h.quote(prefix))
      assert.are.equal(0, r.status, r.err)
      assert.are.equal(h.read(page), h.read(prefix .. "/share/man/man1/sprof-lua.1"))
    end)
  end)

  it("has --help and --version", function ()
    local help = h.run(h.quote(h.sprof_lua) .. " --help")
    assert.are.equal(0, help.status)
    assert.matches("usage: .-%[options%] %[lua options%] %[script %[args%.%.%.%]%]", help.out)
    assert.matches("\n  %-e stat ", help.out)
    assert.matches("\n  %-l g=mod ", help.out)
    local version = h.run(h.quote(h.sprof_lua) .. " --version")
    assert.are.equal(0, version.status)
    assert.matches("^sprof%-lua %d+%.%d+%.%d+", version.out)
  end)
end)
