-- Profiles that leave sprof, checked by what reads them: pprof by
-- `go tool pprof`, the JSON session by our own loader (round trips,
-- damaged files), --load-prev. (speedscope: spec/browser/speedscope.test.mjs)
local h = require "spec.helper"
local sprof = require "sprof"

-- seven and three do 7 and 3 parts of the same work, in their own bodies
-- (so the time is their own, not a callee's): 70% and 30%, in turns for
-- 0.3 s of CPU. (seven and three stay on lines 2 and 3.)
local SHARES = [[
local N = 250000
local function seven () local x = 0 for i = 1, 7 * N do x = x + i % 7 end return x end
local function three () local x = 0 for i = 1, 3 * N do x = x + i % 7 end return x end
local t0 = os.clock()
repeat seven() three() until os.clock() - t0 >= 0.3
]]

local sprof_lua = h.quote(h.sprof_lua)

local go_pprof, write_file = h.go_pprof, h.write

local function load_as (json, format)
  return h.run(sprof_lua .. " --load " .. h.quote(json) .. " -r " .. format .. " -o -")
end

-- One run of SHARES, kept as JSON: every format below renders this session.
local session_json
local function shares_session ()
  if not session_json then
    session_json = h.tmpfile(".json")
    local r = h.sprof("-r json -o " .. h.quote(session_json), h.script(SHARES))
    assert(r.status == 0, r.err)
  end
  return session_json
end

-- Our own share (percent) of the time spent in each function's body.
local function our_shares (json)
  local stacks, total = h.collapsed(assert(load_as(json, "collapsed")).out)
  return { seven = 100 * h.self_in(stacks, "seven") / total,
           three = 100 * h.self_in(stacks, "three") / total }, total
end

-- The rows of `go tool pprof -top`: { flat = %, cum = %, name = }.
local function pprof_top (text)
  local rows = {}
  for line in text:gmatch("[^\n]+") do
    local flat, cum, name = line:match("^%s*%S+%s+([%d.]+)%%%s+[%d.]+%%%s+%S+%s+([%d.]+)%%%s+(.+)$")
    if flat then
      rows[#rows + 1] = { flat = tonumber(flat), cum = tonumber(cum), name = name }
    end
  end
  return rows
end


describe("pprof", function ()
  local pb

  setup(function ()
    pb = h.tmpfile(".pb.gz")
    local r = h.run(sprof_lua .. " --load " .. h.quote(shares_session())
                    .. " -r pprof -o " .. h.quote(pb))
    assert(r.status == 0, r.err)
  end)

  it("is read by go tool pprof -top, with our top functions and shares", function ()
    local r = go_pprof("-top " .. h.quote(pb))
    assert.are.equal(0, r.status, r.err)
    assert.matches("Type: wall", r.out)
    local rows = pprof_top(r.out)
    assert.is_true(#rows >= 2, r.out)
    assert.are.equal("seven", rows[1].name, r.out)
    assert.are.equal("three", rows[2].name, r.out)
    local ours = our_shares(shares_session())
    assert.is_true(math.abs(rows[1].flat - ours.seven) <= 5,
                   ("seven: pprof %.1f%%, ours %.1f%%"):format(rows[1].flat, ours.seven))
    assert.is_true(math.abs(rows[2].flat - ours.three) <= 5,
                   ("three: pprof %.1f%%, ours %.1f%%"):format(rows[2].flat, ours.three))
    for _, row in ipairs(rows) do
      if row.name == "(main chunk)" then assert.are.equal(100, row.cum) end
    end
  end)

  it("has the call stacks, the sample types, the period, file names and lines", function ()
    local traces = go_pprof("-traces " .. h.quote(pb))
    assert.are.equal(0, traces.status, traces.err)
    -- leaf first: seven, called by the main chunk
    assert.matches("%d+m?s%s+seven\n%s+%(main chunk%)\n", traces.out)
    assert.matches("%d+m?s%s+three\n%s+%(main chunk%)\n", traces.out)
    local raw = go_pprof("-raw " .. h.quote(pb))
    assert.are.equal(0, raw.status, raw.err)
    assert.matches("PeriodType: wall nanoseconds", raw.out, 1, true)
    assert.matches("Period: 1000000\n", raw.out, 1, true)
    assert.matches("samples/count wall/nanoseconds[dflt]", raw.out, 1, true)
    assert.matches("seven %S+%.lua:2 s=2", raw.out)
    assert.matches("three %S+%.lua:3 s=3", raw.out)
    -- the sample counts add up to the session's
    local samples = go_pprof("-top -sample_index=samples " .. h.quote(pb))
    local json = h.read(shares_session())
    local total = tonumber(json:match('"samples":(%d+)'))
    assert.matches("Total samples = " .. total .. "%s", samples.out)
  end)

  it("says cpu with the CPU clock, from the command and the Lua API", function ()
    local out = h.tmpfile(".pb.gz")
    local r = h.sprof("--clock cpu -r pprof -o " .. h.quote(out), h.script(SHARES))
    assert.are.equal(0, r.status, r.err)
    local raw = go_pprof("-raw " .. h.quote(out))
    assert.matches("samples/count cpu/nanoseconds[dflt]", raw.out, 1, true)
    assert.matches("Type: cpu", go_pprof("-top " .. h.quote(out)).out, 1, true)

    local p = sprof.profile(function () for _ = 1, 3e6 do end end)
    local path = h.tmpfile(".pb.gz")
    p:write(path, "pprof")
    local bytes = h.read(path)
    assert.are.equal("\31\139", bytes:sub(1, 2))  -- gzip
    assert.are.equal(bytes, p:output("pprof"))
    assert.are.equal(0, go_pprof("-top " .. h.quote(path)).status)
  end)
end)


describe("json session", function ()
  it("save, load, save gives the same file", function ()
    local a = shares_session()
    local r = load_as(a, "json")
    assert.are.equal(0, r.status, r.err)
    assert.are.equal(h.read(a), r.out)
    -- and through the Lua API
    local p = sprof.new()
    p:load(a)
    assert.are.equal(h.read(a), p:output("json"))
  end)

  it("gives the same collapsed stacks after a round trip", function ()
    local p = sprof.profile(function ()
      local t = {}
      for i = 1, 200000 do t[i] = tostring(i) end
      table.sort(t)
      return string.rep("x", 1 << 22)
    end)
    local json = h.tmpfile(".json")
    p:write(json, "json")
    local q = sprof.new()
    q:load(json)
    assert.are.equal(p:output("collapsed"), q:output("collapsed"))
    assert.are.equal(p:output("collapsed", { show_all = true }),
                     q:output("collapsed", { show_all = true }))
    -- the command: a run's collapsed output and its JSON's
    local script = h.script(SHARES)
    local out = h.tmpfile(".json")
    assert.are.equal(0, h.sprof("-r json -o " .. h.quote(out), script).status)
    local x = sprof.new()
    x:load(out)
    assert.are.equal(x:output("collapsed"), load_as(out, "collapsed").out)
  end)

  it("refuses a truncated or damaged file in one line, without a crash", function ()
    local good = h.read(shares_session())
    local cases = {
      { "truncated", good:sub(1, #good // 2), "not valid JSON" },
      { "cut at the end", good:sub(1, -3), "not valid JSON" },
      { "empty", "", "empty file" },
      { "binary", "\0\1\2\255\254", "not valid JSON" },
      { "another format", '{"format":"speedscope"}', "not a sprof session" },
      { "a newer version", (good:gsub('"version":1', '"version":2')), "unsupported session version" },
      { "a frame that does not exist", (good:gsub('"frames":%[%d+', '"frames":[99999')),
        "a stack names a frame that does not exist" },
      { "a negative weight", (good:gsub('"weight_ns":', '"weight_ns":-', 1)),
        'a stack\'s "weight_ns" is not a count' },
      { "a weight beyond 2^63", (good:gsub('"weight_ns":', '"weight_ns":1e30', 1)),
        'a stack\'s "weight_ns" is not a count' },
      { "no kind", (good:gsub('"kind":"lua"', '"kinds":"lua"', 1)),
        "a frame lacks its name, file or kind" },
      { "a start in the far future", (good:gsub('"start_time":[%d.]+', '"start_time":1e300')),
        '"start_time" is not a Unix time' },
      { "a broken timeline", (good:gsub('"stack":%[%d+', '"stack":[-1')),
        "the timeline has a bad time or stack" },
    }
    local p = sprof.new()
    p:load(shares_session())
    local before = p:output("json")
    for _, case in ipairs(cases) do
      local name, text, why = case[1], case[2], case[3]
      local path = h.tmpfile(".json")
      write_file(path, text)
      local r = load_as(path, "text")
      assert.are.equal(1, r.status, name)
      assert.are.equal("", r.out, name)
      assert.matches("^[^\n]*cannot load '[^\n]*': " .. why:gsub("%p", "%%%0") .. "[^\n]*\n$",
                     r.err, nil, false, name)
      -- the Lua API raises the same, and the profiler keeps what it had
      local ok, err = pcall(p.load, p, path)
      assert.is_false(ok, name)
      assert.matches(why, err, 1, true)
      assert.are.equal(before, p:output("json"), name)
    end
  end)
end)


describe("--load-prev", function ()
  local function run_in (state, script, opts, env)
    env = env or {}
    env.XDG_STATE_HOME = state
    return h.sprof(opts or "-o /dev/null", script, nil, env)
  end

  local function kept (dir)
    local names = {}
    local p = io.popen("ls -1 " .. h.quote(dir) .. " 2>/dev/null")
    for name in p:lines() do names[#names + 1] = name end
    p:close()
    return names
  end

  it("renders the latest session again and keeps at most 10", function ()
    local state = h.tmpfile("-state")
    local quick = h.script("local function quick () for _ = 1, 1e5 do end end quick()")
    for _ = 1, 11 do assert.are.equal(0, run_in(state, quick).status) end
    local last = h.script("local function the_last_one () local t0 = os.clock() "
                          .. "repeat for _ = 1, 1e5 do end until os.clock() - t0 >= 0.05 end the_last_one()")
    local r = run_in(state, last, "-r json -o -")
    assert.are.equal(0, r.status, r.err)
    local names = kept(state .. "/sprof")
    assert.are.equal(10, #names)
    for _, name in ipairs(names) do assert.matches("^session%-.*%.json$", name) end
    -- the latest is this run's session
    assert.are.equal(r.out, h.read(state .. "/sprof/" .. names[#names]))
    local again = h.run("XDG_STATE_HOME=" .. h.quote(state) .. " " .. sprof_lua
                        .. " --load-prev -r collapsed -o -")
    assert.are.equal(0, again.status, again.err)
    assert.matches("the_last_one", again.out)
    assert.is_nil(again.out:find("quick", 1, true))
    local text = h.run("XDG_STATE_HOME=" .. h.quote(state) .. " " .. sprof_lua .. " --load-prev")
    assert.matches("the_last_one", text.err)
  end)

  it("uses ~/.local/state without XDG_STATE_HOME, and says when there is nothing", function ()
    local home = h.tmpfile("-home")
    assert(os.execute("mkdir -p " .. h.quote(home)))
    local script = h.script("local function homely () for _ = 1, 1e6 do end end homely()")
    local r = h.run("unset XDG_STATE_HOME; HOME=" .. h.quote(home) .. " " .. sprof_lua
                    .. " -o /dev/null " .. h.quote(script))
    assert.are.equal(0, r.status, r.err)
    assert.are.equal(1, #kept(home .. "/.local/state/sprof"))
    local none = h.run("XDG_STATE_HOME=" .. h.quote(h.tmpfile("-empty")) .. " "
                       .. sprof_lua .. " --load-prev")
    assert.are.equal(1, none.status)
    assert.matches("^[^\n]*%-%-load%-prev: no saved session in [^\n]*\n$", none.err)
    local both = h.sprof("--load-prev", script)
    assert.are.equal(2, both.status)
  end)

  it("never makes a run fail: an unwritable state directory is one warning", function ()
    local file = h.tmpfile("-not-a-dir")
    write_file(file, "")
    local script = h.script("print('out') io.stderr:write('err\\n') os.exit(3)")
    local r = run_in(file, script, "-r collapsed -o /dev/null")
    assert.are.equal(3, r.status)
    assert.are.equal("out\n", r.out)
    assert.matches("^err\n[^\n]*cannot keep this session in [^\n]*\n$", r.err)
  end)
end)
