-- sprof-lua: runs a script as lua5.4 would, and reports.
local h = require "spec.helper"

local function lua (script, args)
  return h.run("lua5.4 " .. h.quote(script) .. " " .. (args or ""))
end

local busy = [[
local function busy () local x = 0 for i = 1, 2000000 do x = x + i % 5 end return x end
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
  for i = 1, 200000 do x = x + i end          -- running: signals arrive
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
  for i = 1, 300000 do x = x + i end
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
    assert.matches("M.run  .-fakelib.lua:8  %[%d+ frames? hidden: fakelib.lua%]", grouped.err)
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
    it("no script at all", function ()
      local r = h.run(h.quote(h.sprof_lua))
      assert.are.equal(2, r.status)
      assert.matches("no script given", r.err)
    end)
  end)

  it("has --help and --version", function ()
    local help = h.run(h.quote(h.sprof_lua) .. " --help")
    assert.are.equal(0, help.status)
    assert.matches("usage: ", help.out)
    local version = h.run(h.quote(h.sprof_lua) .. " --version")
    assert.are.equal(0, version.status)
    assert.matches("^sprof%-lua %d+%.%d+%.%d+", version.out)
  end)
end)
