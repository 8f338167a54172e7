-- Library code in the reports: what lives in the system Lua directories
-- (share/lua/, lib/lua/, .luarocks/) is grouped into the library function
-- the program called, except the program's own script and package; inside
-- a group, a frame with a large own time still shows; a group's hidden
-- time is labelled as the group's, not as the function's self time.
local h = require "spec.helper"
local sprof = require "sprof"

local function write (path, text)
  assert(os.execute("mkdir -p " .. h.quote(path:match("^(.*)/"))))
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

-- BURN(ms) in the sources below: busy for that many ms of CPU time, on
-- one line, in the function that says it (not in a helper it calls).
local function burn (code)
  return (code:gsub("BURN%((%d+)%)", function (ms)
    return string.format("do local stop, x = os.clock() + %g, 0 repeat "
      .. "for i = 1, 10000 do x = x + i %% 7 end until os.clock() >= stop end",
      ms / 1000)
  end))
end

-- A fake system tree under 'dir' (no tail calls: they would take the
-- caller's frame off the stack): a library (vendorlib) whose run() goes
-- through walk() to step() (a little own time) and crunch() (half of
-- the run) and calls the program back; the package "mytool" (mytool.lua,
-- mytool/core.lua, mytool/cli.lua); bin/mytool, which requires
-- mytool.core, and bin/othername, a symlink to mytool/cli.lua.
local function make_tree (dir)
  local lua = dir .. "/share/lua/5.4"
  local path = string.format("package.path = %q .. package.path\n", lua .. "/?.lua;")
  write(lua .. "/vendorlib.lua", burn [[
local M = {}
local function crunch () BURN(200) end
local function step () BURN(15) end
local function walk (cb) step() crunch() local r = cb() return r end
function M.run (cb) BURN(20) local r = walk(cb) return r end
return M
]])
  write(lua .. "/mytool.lua", burn [[
local M = {}
function M.helper () BURN(50) end
return M
]])
  write(lua .. "/mytool/core.lua", burn [[
local helper = require "mytool"
local vendor = require "vendorlib"
local core = {}
function core.work () BURN(75) end
local function callback () BURN(60) end
function core.main ()
  core.work()
  helper.helper()
  vendor.run(callback)
end
return core
]])
  write(lua .. "/mytool/cli.lua", path .. 'require("mytool.core").main()\n')
  write(dir .. "/bin/mytool", path .. 'require("mytool.core").main()\n')
  write(dir .. "/other.lua", path .. 'require("mytool.core").main()\n')
  write(dir .. "/mytool.lua", path .. 'require("mytool.core").main()\n')
  assert(os.execute("ln -s ../share/lua/5.4/mytool/cli.lua " .. h.quote(dir .. "/bin/othername")))
  return { lua = lua, bin = dir .. "/bin/mytool", cli = lua .. "/mytool/cli.lua",
           link = dir .. "/bin/othername", other = dir .. "/other.lua",
           named = dir .. "/mytool.lua" }
end

local ntrees = 0
local function new_tree ()
  ntrees = ntrees + 1
  return make_tree(string.format("%s/tree%d", h.tmpdir, ntrees))
end

-- The tree of a text report: per line its depth, parent (an index),
-- seconds, percent, name, where, and the group's label if it has one.
local function tree_of (text)
  local rows = {}
  for line in text:gmatch("[^\n]+") do
    local prefix, secs, pct, rest = line:match("^(.-)(%d+%.%d%d%d) +(%d+%.%d)%%  (.*)$")
    if prefix then
      local row = { depth = utf8.len(prefix) // 3, seconds = tonumber(secs),
                    percent = tonumber(pct), line = line }
      row.name, row.where = rest:match("^(.-)  (%S+)")
      row.name = row.name or rest
      local n, s = rest:match("%[(%d+) frames? hidden: (%d+%.%d%d%d) s")
      if n then
        row.hidden, row.hidden_s = tonumber(n), tonumber(s)
        row.hidden_in = rest:match("hidden: [%d.]+ s in (.-)%]$")
      end
      for i = #rows, 1, -1 do
        if rows[i].depth == row.depth - 1 then row.parent = i break end
      end
      rows[#rows + 1] = row
    end
  end
  return rows
end

local function find (rows, name)
  for i, r in ipairs(rows) do if r.name == name then return r, i end end
end

local function children (rows, i)
  local list = {}
  for _, r in ipairs(rows) do if r.parent == i then list[#list + 1] = r end end
  return list
end

-- The tree lines of a report, without its header.
local function tree_lines (text)
  local list = {}
  for _, r in ipairs(tree_of(text)) do list[#list + 1] = r.line end
  return list
end

-- The frames of a JSON session by "name file" (first one of each).
local function frames_of (json)
  local frames = {}
  for obj in json:gmatch('{"name":.-}') do
    local name = obj:match('"name":"(.-)"')
    local file = obj:match('"file":"(.-)"')
    local key = name .. "\0" .. file
    frames[key] = frames[key] or { library = obj:match('"library":(%a+)') == "true" }
  end
  return frames
end

local function library_flag (frames, name, file_end)
  for key, f in pairs(frames) do
    local n, file = key:match("^(.-)%z(.*)$")
    if n == name and file:sub(-#file_end) == file_end then return f.library end
  end
  error("no frame " .. name .. " in " .. file_end)
end

-- Live runs count CPU time: on a loaded machine, wall time would also
-- give the waits for a CPU to whatever frame was on the stack.
local function run_json (script)
  local json = h.tmpfile(".json")
  local r = h.sprof("--clock cpu -r json -o " .. h.quote(json), script)
  assert.are.equal(0, r.status, r.err)
  return h.read(json), json
end

local function load_text (json_path, opts)
  local r = h.run(h.quote(h.sprof_lua) .. " --load " .. h.quote(json_path)
                  .. " -o - " .. (opts or ""))
  assert.are.equal(0, r.status, r.err)
  return r.out
end

describe("library code", function ()
  it("is not the program's script nor its package, even under a system Lua directory", function ()
    local t = new_tree()
    local json, path = run_json(t.bin)
    local frames = frames_of(json)
    -- bin/mytool: mytool.lua and mytool/*.lua are its package
    assert.is_false(library_flag(frames, "core.work", "/mytool/core.lua"))
    assert.is_false(library_flag(frames, "core.main", "/mytool/core.lua"))
    assert.is_false(library_flag(frames, "M.helper", "/5.4/mytool.lua"))
    assert.is_true(library_flag(frames, "M.run", "/vendorlib.lua"))
    assert.is_true(library_flag(frames, "walk", "/vendorlib.lua"))
    -- and the report shows them as code of its own, not as a group
    local rows = tree_of(load_text(path))
    for _, name in ipairs { "core.main", "core.work", "M.helper" } do
      local r = find(rows, name)
      assert.is_truthy(r, name .. " is shown")
      assert.is_nil(r.hidden, r.line)
    end
    assert.is_truthy(find(rows, "M.run").hidden)
    assert.is_nil(find(rows, "walk"))
    -- run by another script, the same package is library code, also when
    -- the script is a .lua file that bears the package's name (a script
    -- http.lua is not the http library)
    for _, script in ipairs { t.other, t.named } do
      frames = frames_of((run_json(script)))
      assert.is_true(library_flag(frames, "core.work", "/mytool/core.lua"), script)
      assert.is_true(library_flag(frames, "M.helper", "/5.4/mytool.lua"), script)
    end
  end)

  it("is not the package a script run from a system Lua directory lies in, also through a symlink", function ()
    local t = new_tree()
    for script, chunk in pairs { [t.cli] = "/mytool/cli.lua", [t.link] = "/bin/othername" } do
      local frames = frames_of((run_json(script)))
      assert.is_false(library_flag(frames, "(main chunk)", chunk), script)
      assert.is_false(library_flag(frames, "core.work", "/mytool/core.lua"), script)
      assert.is_false(library_flag(frames, "M.helper", "/5.4/mytool.lua"), script)
      assert.is_true(library_flag(frames, "M.run", "/vendorlib.lua"), script)
    end
  end)

  it("shows a frame with a large own time inside its group, and the group's hidden time on its line", function ()
    local t = new_tree()
    local json, path = run_json(t.bin)
    assert.is_truthy(json)
    local rows = tree_of(load_text(path))
    local run, i = find(rows, "M.run")
    assert.is_truthy(run, "M.run is shown")
    -- crunch (half of the run) shows right under the group; walk and
    -- step, between them or with little own time, stay hidden in it
    local crunch = find(rows, "crunch")
    assert.is_truthy(crunch, "crunch is shown")
    assert.are.equal(i, crunch.parent, crunch.line)
    assert.is_true(crunch.percent >= 20, crunch.line)
    assert.is_nil(find(rows, "walk"))
    assert.is_nil(find(rows, "step"))
    assert.are.equal("vendorlib.lua", run.hidden_in)
    -- the label's time is the hidden frames' own time: step's 15 ms and
    -- walk's; the line's total is the function's own time (20 ms), the
    -- group's and its children's
    local stacks = h.collapsed(load_text(path, "-r collapsed"))
    local hidden = (h.time_in(stacks, "M.run") - h.self_in(stacks, "M.run")
                    - h.time_in(stacks, "crunch") - h.time_in(stacks, "callback")) / 1e6
    assert.is_true(math.abs(run.hidden_s - hidden) <= 0.0015, run.line .. " vs " .. hidden)
    assert.is_true(h.time_in(stacks, "step") / 1e6 <= run.hidden_s + 0.001, run.line)
    local own = run.seconds - run.hidden_s
    for _, c in ipairs(children(rows, i)) do own = own - c.seconds end
    assert.is_true(math.abs(own - h.self_in(stacks, "M.run") / 1e6) <= 0.003,
                   run.line .. ": own " .. own)
  end)

  it("reads the same from the saved session, wherever and whenever it is loaded", function ()
    local t = new_tree()
    local state = h.tmpfile("-state")
    local text = h.tmpfile(".txt")
    local r = h.sprof("--clock cpu -o " .. h.quote(text), t.bin, "", { XDG_STATE_HOME = state })
    assert.are.equal(0, r.status, r.err)
    local live = tree_lines(h.read(text))
    assert.is_truthy(find(tree_of(h.read(text)), "crunch"))
    -- the tree is gone: the saved flags decide, not the files
    assert(os.execute("rm -rf " .. h.quote(t.lua)))
    local again = h.run("cd / && " .. h.quote(h.sprof_lua) .. " --load-prev -o -", { XDG_STATE_HOME = state })
    assert.are.equal(0, again.status, again.err)
    assert.are.same(live, tree_lines(again.out))
  end)

  describe("in a saved session", function ()
    -- main (200 ms of its own) calls M.run (60 ms) of a library; through
    -- walk (10 ms) it calls step (30 ms), crunch (400 ms, which calls
    -- string.rep: 50 ms) and the program's callback (250 ms). 1 s in all.
    local lib = "/usr/share/lua/5.4/vendorlib.lua"
    local session = [[
{"format":"sprof-session","version":1,"program":"app.lua","start_time":1.7e9,
"interval":0.001,"clock":"wall","duration_ns":1000000000,"cpu_ns":1000000000,
"samples":1000,"overhead_ns":0,"sampler_ns":0,
"frames":[{"name":"main","file":"app.lua","line":1,"kind":"lua","library":false},
{"name":"M.run","file":"]] .. lib .. [[","line":10,"kind":"lua","library":true},
{"name":"walk","file":"]] .. lib .. [[","line":5,"kind":"lua","library":true},
{"name":"step","file":"]] .. lib .. [[","line":3,"kind":"lua","library":true},
{"name":"crunch","file":"]] .. lib .. [[","line":1,"kind":"lua","library":true},
{"name":"callback","file":"app.lua","line":5,"kind":"lua","library":false},
{"name":"string.rep","file":"[C]","line":0,"kind":"c"}],
"stacks":[{"frames":[0],"weight_ns":200000000,"samples":200},
{"frames":[0,1],"weight_ns":60000000,"samples":60},
{"frames":[0,1,2],"weight_ns":10000000,"samples":10},
{"frames":[0,1,2,3],"weight_ns":30000000,"samples":30},
{"frames":[0,1,2,4],"weight_ns":400000000,"samples":400},
{"frames":[0,1,2,4,6],"weight_ns":50000000,"samples":50},
{"frames":[0,1,2,5],"weight_ns":250000000,"samples":250}]}]]
    local path = h.tmpfile(".json")
    write(path, session)
    local p = sprof.new()
    p:load(path)

    it("shows the frame with 40% own time under its group, and the rest as the group's time", function ()
      local text = load_text(path)
      local rows = tree_of(text)
      local run, i = find(rows, "M.run")
      assert.are.equal(0.800, run.seconds)
      assert.are.same({ 2, 0.040, "vendorlib.lua" }, { run.hidden, run.hidden_s, run.hidden_in })
      local crunch = find(rows, "crunch")
      assert.are.equal(i, crunch.parent)
      assert.are.same({ 0.450, 1, 0.050 }, { crunch.seconds, crunch.hidden, crunch.hidden_s })
      assert.are.equal(i, find(rows, "callback").parent)
      assert.is_nil(find(rows, "walk"))
      assert.is_nil(find(rows, "string.rep"))
      -- totals add up: own 0.060 + hidden 0.040 + children 0.450 + 0.250
      local own = run.seconds - run.hidden_s - crunch.seconds - find(rows, "callback").seconds
      assert.is_true(math.abs(own - 0.060) < 1e-9, tostring(own))
      assert.are.equal(text, p:output_text())
    end)

    it("takes the share as the render option self_threshold", function ()
      local rows = tree_of(p:output_text { self_threshold = 1 })
      local run = find(rows, "M.run")
      assert.is_nil(find(rows, "crunch"))
      assert.are.same({ 0.800, 4, 0.490 }, { run.seconds, run.hidden, run.hidden_s })
      rows = tree_of(p:output_text { self_threshold = 0.025 })
      assert.is_truthy(find(rows, "step"))
      assert.is_nil(find(rows, "walk"))
      assert.matches('data%-self%-threshold="0%.2"', p:output_html())
      assert.matches('data%-self%-threshold="0%.5"', p:output_html { self_threshold = 0.5 })
      local ok, err = pcall(p.output_text, p, { self_threshold = 2 })
      assert.is_false(ok)
      assert.matches("option 'self_threshold' must be a share in %[0, 1%]", err)
    end)

    it("shows every frame with show_all, with no group", function ()
      local rows = tree_of(p:output_text { show_all = true })
      for _, name in ipairs { "walk", "step", "crunch", "string.rep" } do
        assert.is_truthy(find(rows, name), name)
      end
      assert.is_nil(find(rows, "M.run").hidden)
    end)
  end)

  -- Debian's lua-ldoc (cmake/install-deps --tests): /usr/bin/ldoc, its
  -- modules in /usr/share/lua/5.x/ldoc/
  it("shows what ldoc does inside its own modules", function ()
    for _, file in ipairs { "/usr/bin/ldoc", "/usr/share/lua/5.4/ldoc/parse.lua",
                            "/usr/share/lua/5.4/pl/utils.lua" } do
      assert(io.open(file), file .. " is missing: apt-get install lua-ldoc")
    end
    -- ldoc's parser over Penlight's sources (from lua-penlight, which it needs)
    local src = h.tmpfile("-src")
    assert(os.execute("mkdir -p " .. h.quote(src) .. " && cp -L /usr/share/lua/5.4/pl/*.lua "
                      .. h.quote(src)))
    local report = h.tmpfile(".txt")
    local r = h.run(h.quote(h.sprof_lua) .. " -o " .. h.quote(report)
                    .. " /usr/bin/ldoc --dump " .. h.quote(src))
    assert.are.equal(0, r.status, r.err)
    local rows = tree_of(h.read(report))
    local parse = find(rows, "parse.file")
    assert.is_truthy(parse, h.read(report))
    assert.is_nil(parse.hidden, parse.line)
    local inside = 0
    for _, row in ipairs(rows) do
      if row.where and row.where:find("/ldoc/", 1, true) then inside = inside + 1 end
    end
    assert.is_true(inside >= 5, h.read(report))
  end)
end)
