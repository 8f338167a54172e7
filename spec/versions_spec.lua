-- One sprof for Lua 5.4, 5.3 and 5.1: what tells them apart. The wrong
-- module or library says so in one line; libsprof-preload.so finds the
-- Lua of any host. (The specs that run programs run on each version too:
-- spec/run, SPROF_LUA.)
local h = require "spec.helper"
local q = h.quote

local function exists (path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- the versions this build made, besides 5.4
local others = {}
for _, v in ipairs { "5.3", "5.1" } do
  if exists(h.build .. "/lua" .. v .. "/sprof.so") then others[#others + 1] = v end
end

local HOT = h.HOT_SPOT .. "hot_spot(0.2)\n"

-- LD_PRELOAD of 'lib', after a sanitizer runtime CI puts first
local function preload (lib)
  local first = os.getenv("LD_PRELOAD")
  return (first and first .. " " or "") .. lib
end

-- LUA_CPATH for 'lua'..v: its own variable (5.1 has none)
local function cpath_env (v, dir)
  local name = v == "5.1" and "LUA_CPATH" or "LUA_CPATH_" .. v:gsub("%.", "_")
  return { [name] = dir .. "/?.so;;", LUA_CPATH = dir .. "/?.so;;" }
end

describe("a sprof.so required by another Lua", function ()
  local pairs_tried = 0
  for _, built in ipairs { "5.4", table.unpack(others) } do
    for _, runs in ipairs { "5.4", table.unpack(others) } do
      if built ~= runs then
        pairs_tried = pairs_tried + 1
        it("fails in one line naming both: built for " .. built .. ", run by lua" .. runs, function ()
          local dir = built == "5.4" and h.build or h.build .. "/lua" .. built
          local script = h.script [[
local ok, err = pcall(require, "sprof")
print(ok, err)
]]
          local r = h.run("lua" .. runs .. " " .. q(script), cpath_env(runs, dir))
          assert.are.equal(0, r.status, r.err)
          assert.are.equal(("false\tsprof: this sprof.so is built for Lua %s, and this "
            .. "program runs Lua %s: require the sprof built for Lua %s\n")
            :format(built, runs, runs), r.out)
        end)
      end
    end
  end
  if pairs_tried == 0 then pending("only the 5.4 build: install liblua5.3-dev or liblua5.1-0-dev") end
end)

describe("libsprof-preload.so", function ()
  local PRELOAD = h.build .. "/libsprof-preload.so"

  for _, v in ipairs { "5.4", table.unpack(others) } do
    local host = h.build .. "/spec/plain_host" .. (v == "5.4" and "" or v)
    it("profiles a host linked with liblua" .. v .. ", each state to its report", function ()
      local out = h.tmpfile("-%p.collapsed")
      local r = h.run(q(host) .. " " .. q(h.script(HOT)),
                      { LD_PRELOAD = preload(PRELOAD), SPROF_OUTPUT = out })
      assert.are.equal(0, r.status, r.err)
      assert.are.equal("", r.err)
      -- two states: FILE and FILE.2, %p the host's pid
      local files = h.run("ls " .. q(out:gsub("%-%%p%.collapsed$", "")) .. "-*").out
      local first, second = files:match("^(%S+)\n(%S+)\n$")
      assert.is_truthy(first, files)
      -- each ran hot_spot for 0.2 s of CPU (the first state, closed at
      -- exit, also holds the second's run as time outside Lua)
      for _, f in ipairs { first, second } do
        local stacks = h.collapsed(h.read(f))
        assert.is_true(h.time_in(stacks, "hot_spot") >= 0.15e6, h.read(f))
      end
    end)
  end

  -- LuaJIT runs one profiler per process: the first state is profiled,
  -- the second says so once and runs as it would
  local jit_host = h.build .. "/spec/plain_hostluajit"
  local jit_test = exists(h.build .. "/libsprof-luajit.so") and exists(jit_host) and it or pending
  jit_test("profiles the first state of a host linked with libluajit, the other says why not", function ()
    local out = h.tmpfile("-%n.collapsed")
    local script = h.script("print('ran') " .. HOT)
    local plain = h.run(q(jit_host) .. " " .. q(script))
    local r = h.run(q(jit_host) .. " " .. q(script),
                    { LD_PRELOAD = preload(PRELOAD), SPROF_OUTPUT = out })
    assert.are.equal(plain.status, r.status)
    assert.are.equal("ran\nran\n", r.out)
    assert.are.equal("sprof: LuaJIT runs one profiler at a time in a process (its profiler "
      .. "is process-wide): stop the other one first\n", r.err)
    local report = h.read((out:gsub("%%n", "1"))) or ""
    local stacks = h.collapsed(report)
    assert.is_true(h.time_in(stacks, "hot_spot") >= 0.15e6, report)
    assert.matches("%[jit compiled%]", report)
  end)

  it("leaves a host that links libsprof itself to it", function ()
    local r = h.run(q(h.build .. "/examples/host/host"), { LD_PRELOAD = preload(PRELOAD) })
    assert.are.equal(0, r.status, r.err)
  end)

  it("says in one line when libsprof of another version is preloaded", function ()
    if #others == 0 then return pending("only the 5.4 build") end
    local v = others[1]
    local script = h.script("print('ran') " .. HOT)
    local plain = h.run(q(h.build .. "/spec/plain_host" .. v) .. " " .. q(script))
    local r = h.run(q(h.build .. "/spec/plain_host" .. v) .. " " .. q(script),
                    { LD_PRELOAD = preload(h.build .. "/libsprof.so"), SPROF_OUTPUT = h.tmpfile(".txt") })
    assert.are.equal(plain.status, r.status)
    assert.are.equal(plain.out, r.out)
    assert.are.equal("sprof: this libsprof is built for Lua 5.4, and this program runs Lua "
      .. v .. ": preload libsprof-preload.so, which finds the right one; the program "
      .. "runs unprofiled\n", r.err)
  end)
end)

describe("sprof-lua5.3 and sprof-lua5.1", function ()
  for _, v in ipairs(others) do
    it("run a script as lua" .. v .. " does: -v, arg, an error", function ()
      local cmd = q(h.build .. "/sprof-lua" .. v)
      assert.are.equal(h.run("lua" .. v .. " -v").out .. h.run("lua" .. v .. " -v").err,
                       h.run(cmd .. " -v -o " .. q(h.tmpfile(".txt"))).out)
      local script = h.script("print(#arg, arg[1], ...) error('boom')")
      local plain = h.run("lua" .. v .. " " .. q(script) .. " a b")
      local r = h.run(cmd .. " -o " .. q(h.tmpfile(".txt")) .. " " .. q(script) .. " a b")
      assert.are.equal(plain.status, r.status)
      assert.are.equal(plain.out, r.out)
      assert.are.equal(plain.err:gsub("^lua" .. v:gsub("%.", "%%.") .. ": ", ""),
                       r.err:gsub("^[^:]*: ", ""))
    end)
  end
  if #others == 0 then pending("only the 5.4 build") end
end)

describe("sprof.auto with SPROF_PERIOD", function ()
  for _, v in ipairs(others) do
    it("writes pprof files that go tool pprof reads, on lua" .. v, function ()
      local dir = h.tmpfile("-periods")
      assert(os.execute("mkdir -p " .. q(dir)))
      local init = v == "5.1" and "LUA_INIT" or "LUA_INIT_" .. v:gsub("%.", "_")
      local env = cpath_env(v, h.build .. "/lua" .. v)
      env[init] = 'require "sprof.auto"'
      env.LUA_PATH = h.root .. "/runtime/?.lua;;"
      env.SPROF_PERIOD = "0.1"
      env.SPROF_OUTPUT = dir .. "/p-%n.pb.gz"
      -- 0.5 s of CPU in hot_spot: some periods
      local r = h.run("lua" .. v .. " " .. q(h.script((HOT:gsub("hot_spot%(0%.2%)", "hot_spot(0.5)")))), env)
      assert.are.equal(0, r.status, r.err)
      assert.are.equal("", r.err)
      local list = h.run("ls " .. q(dir)).out
      assert.is_truthy(list:match("p%-1%.pb%.gz\n"), list)
      local top = h.go_pprof("-top " .. q(dir .. "/p-1.pb.gz"))
      assert.are.equal(0, top.status, top.err)
      assert.matches("hot_spot", top.out)
    end)
  end
  if #others == 0 then pending("only the 5.4 build") end
end)
