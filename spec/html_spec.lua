-- The HTML report, as the API and the command produce it. What the page
-- does in a browser is tested in spec/browser/html.test.mjs.
local h = require "spec.helper"
local sprof = require "sprof"
local clock = os.clock  -- (in a spec, a global is looked up by busted's Lua code)

local function work (secs)  -- busy for secs seconds of CPU (default 0.02)
  local t0, x = clock(), 0
  repeat for i = 1, 100000 do x = x + i % 7 end until clock() - t0 >= (secs or 0.02)
  return x
end

-- The text of the page's <script type="application/json" id="sprof-data">.
local function embedded_json (page)
  local open = '<script type="application/json" id="sprof-data">'
  local from = assert(page:find(open, 1, true), "no sprof-data element")
  local stop = assert(page:find("</script>", from, true))
  return page:sub(from + #open, stop - 1)
end

local function count (s, plain)
  local n, at = 0, 1
  while true do
    local i = s:find(plain, at, true)
    if not i then return n end
    n, at = n + 1, i + 1
  end
end

-- A script whose chunk and function names are markup, and one whose
-- names are not valid UTF-8; each calls a busy loop long enough to show
-- (0.03 s of CPU).
local hostile_script = [[
local function spin (secs)
  local t0, x = os.clock(), 0
  repeat for i = 1, 100000 do x = x + i % 7 end until os.clock() - t0 >= secs
  return x
end
local t = {}
t["<b>x</b>"] = function () spin(0.03) end
local chunk = load("local spin = ... spin(0.03)", "=</script><img src=x onerror=alert(1)>")
local odd = load("local spin = ... spin(0.03)", "=bad\255\254name \u{2028}\u{2029}&")
t["<b>x</b>"]()
chunk(spin)
odd(spin)
]]

describe("the HTML report", function ()
  it("p:output_html() is one page with the session JSON inside", function ()
    local p = sprof.profile(work)
    local page = p:output_html()
    assert.are.equal(page, p:output("html"))
    assert.matches("^<!DOCTYPE html>", page)
    assert.matches("</html>\n?$", page)
    -- the data is the session JSON, exactly as the json format writes it
    local json = embedded_json(page)
    assert.are.equal(p:output("json"), json)
    assert.matches('"format":"sprof%-session"', json)
    assert.matches('"library":false', json)
    -- the style sheet and the script are inline, and the page fetches nothing
    assert.matches("<style>.-%-%-bg:", page)
    assert.matches("<script>\n?/%*", page)
    assert.matches("default%-src 'none'", page)
    assert.matches("script%-src 'sha256%-[%w+/]+=*'", page)
    assert.is_nil(page:find("@@[%a%-]+@@"), "a template slot was left unfilled")
    for _, pattern in ipairs { "src=[\"']?http", "href=[\"']?http", "url%(http",
                               "@import", "<link rel=\"stylesheet\"" } do
      assert.is_nil(page:find(pattern), pattern)
    end
  end)

  it("has a script that never makes markup from strings", function ()
    local js = assert(h.read(h.root .. "/report/html/report.js"))
    for _, sink in ipairs { "innerHTML", "outerHTML", "insertAdjacentHTML",
                            "document.write", "eval(", "new Function" } do
      assert.is_nil(js:find(sink, 1, true), sink)
    end
  end)

  it("p:write(path, 'html') writes the same page", function ()
    local p = sprof.profile(work, 0.005)
    local path = h.tmpfile(".html")
    p:write(path, "html")
    assert.are.equal(p:output_html(), h.read(path))
  end)

  it("takes the render options (show_all starts with library frames shown)", function ()
    local p = sprof.profile(work, 0.005)
    assert.matches('data%-show%-all="false"', p:output_html())
    assert.matches('data%-show%-all="true"', p:output_html { show_all = true })
    assert.matches("unknown option", select(2, pcall(p.output_html, p, { colour = 1 })))
  end)

  it("of a memory profile carries its bytes, and opens on the memory_view asked", function ()
    local p = sprof.new { memory = true }
    p:start()
    local t0, kept = clock(), {}  -- strings of 100 to 200 bytes, for 0.05 s of CPU
    repeat kept[#kept + 1] = ("x"):rep(#kept % 100 + 100) .. #kept until clock() - t0 >= 0.05
    p:stop()
    local page = p:output_html()
    local json = embedded_json(page)
    assert.matches('"memory_rate":524288[,}]', json)
    assert.matches('"alloc_bytes":%d+', json)
    assert.matches('"heap":%[%d', json)
    assert.matches('data%-memory%-view=""', page)
    assert.matches('data%-memory%-view="live"', p:output_html { memory_view = "live" })
    assert.matches('data%-memory%-view="time"', p:output("html", { memory_view = "time" }))
  end)

  it("keeps names that are markup as data: nothing ends the script element", function ()
    local script = h.script(hostile_script)
    local out = h.tmpfile(".html")
    local r = h.sprof("-r html -o " .. h.quote(out), script)
    assert.are.equal(0, r.status, r.err)
    local page = h.read(out)
    -- the template's two script elements, and no other element from data
    assert.are.equal(2, count(page:lower(), "<script"))
    assert.are.equal(2, count(page:lower(), "</script"))
    for _, markup in ipairs { "<img", "<b>", "</b>" } do
      assert.are.equal(0, count(page:lower(), markup), markup)
    end
    local json = embedded_json(page)
    assert.truthy(json:find('"name":"\\u003cb\\u003ex\\u003c/b\\u003e"', 1, true))
    assert.truthy(json:find('"file":"\\u003c/script\\u003e\\u003cimg src=x '
                            .. 'onerror=alert(1)\\u003e"', 1, true))
  end)

  it("turns names that are not UTF-8 into U+FFFD and escapes U+2028/U+2029", function ()
    local out = h.tmpfile(".html")
    local r = h.sprof("-r html -o " .. h.quote(out), h.script(hostile_script))
    assert.are.equal(0, r.status, r.err)
    local page = h.read(out)
    assert.is_truthy(utf8.len(page), "the page is not valid UTF-8")
    assert.is_nil(page:find("\u{2028}", 1, true))
    assert.is_nil(page:find("\u{2029}", 1, true))
    assert.truthy(embedded_json(page):find('bad\\ufffd\\ufffdname \\u2028\\u2029\\u0026"', 1, true))
  end)
end)

describe("sprof-lua -r html", function ()
  local script = h.script("local x = 0 for i = 1, 1000000 do x = x + i % 3 end")

  it("writes the page to -o FILE or, with -o -, to stdout", function ()
    local r = h.sprof("-r html -o -", script)
    assert.are.equal(0, r.status, r.err)
    assert.matches("^<!DOCTYPE html>", r.out)
    assert.matches('"program":"[^"]*%.lua"', embedded_json(r.out))
  end)

  it("saves to a temporary file, and says where, when stderr is a terminal", function ()
    local tmp = h.tmpfile()
    assert(os.execute("mkdir " .. h.quote(tmp)))
    local cmd = h.quote(h.sprof_lua) .. " -r html " .. h.quote(script)
    local r = h.run("script -qfec " .. h.quote(cmd) .. " /dev/null", { TMPDIR = tmp })
    assert.are.equal(0, r.status, r.err)
    local path = r.out:match("stderr is a terminal, so the report was saved to (%S+%.html)")
    assert.is_truthy(path, r.out)
    assert.are.equal(tmp, path:match("^(.*)/sprof%-[^/]+%.html$"))
    assert.matches("^<!DOCTYPE html>", h.read(path))
    assert.is_nil(r.out:find("<!DOCTYPE", 1, true))  -- not on the terminal
  end)

  it("--open hands the file to xdg-open", function ()
    local bin, opened = h.tmpfile(), h.tmpfile(".args")
    assert(os.execute("mkdir " .. h.quote(bin)))
    local fake = assert(io.open(bin .. "/xdg-open", "w"))
    fake:write("#!/bin/sh\necho \"$@\" > " .. h.quote(opened) .. "\n")
    fake:close()
    assert(os.execute("chmod +x " .. h.quote(bin .. "/xdg-open")))
    local out = h.tmpfile(".html")
    local r = h.sprof("-r html --open -o " .. h.quote(out), script,
                      nil, { PATH = bin .. ":/usr/bin:/bin" })
    assert.are.equal(0, r.status, r.err)
    for _ = 1, 50 do  -- it is not waited for
      if h.read(opened) then break end
      os.execute("sleep 0.1")
    end
    assert.are.equal(out .. "\n", h.read(opened))
    -- with no -o: a temporary file, named on stderr
    r = h.sprof("-r html --open", script, nil,
                { PATH = bin .. ":/usr/bin:/bin", TMPDIR = h.tmpdir })
    local path = r.err:match("report saved to (%S+%.html)")
    assert.is_truthy(path, r.err)
    for _ = 1, 50 do
      if h.read(opened) == path .. "\n" then break end
      os.execute("sleep 0.1")
    end
    assert.are.equal(path .. "\n", h.read(opened))
  end)

  it("--open says so when there is no xdg-open", function ()
    local out = h.tmpfile(".html")
    local r = h.sprof("-r html --open -o " .. h.quote(out), script, nil,
                      { PATH = "/nonexistent" })
    assert.are.equal(0, r.status, r.err)
    assert.matches("cannot open the report: xdg%-open not found; open "
                   .. out:gsub("%p", "%%%0") .. " in a browser", r.err)
    assert.matches("^<!DOCTYPE html>", h.read(out))
  end)

  it("refuses --open without an html report in a file", function ()
    local r = h.sprof("--open", script)
    assert.are.equal(2, r.status)
    assert.matches("%-%-open shows an html report: add %-r html", r.err)
    r = h.sprof("-r html --open -o -", script)
    assert.are.equal(2, r.status)
    assert.matches("%-%-open needs the report in a file", r.err)
  end)
end)

describe("the session JSON's library flag", function ()
  -- main calls lib (flagged library, though its path is not) which calls
  -- helper (library too, 10% of own time: under the 20% that would show
  -- it in the group), which calls back into the program's cb
  local function session (flag)
    local lib = flag and ',"library":true' or ""
    return [[{"format":"sprof-session","version":1,"program":"x.lua",
"start_time":0,"interval":0.001,"clock":"wall","duration_ns":100000000,
"cpu_ns":100000000,"samples":100,"overhead_ns":0,"sampler_ns":0,
"frames":[{"name":"main","file":"x.lua","line":1,"kind":"lua"},
{"name":"lib","file":"vendor/lib.lua","line":1,"kind":"lua"]] .. lib .. [[},
{"name":"helper","file":"vendor/lib.lua","line":9,"kind":"lua"]] .. lib .. [[},
{"name":"cb","file":"x.lua","line":5,"kind":"lua"}],
"stacks":[{"frames":[0,1,2],"weight_ns":10000000,"samples":10},
{"frames":[0,1,2,3],"weight_ns":90000000,"samples":90}]}]]
  end

  local function render (json, renderer)
    local path = h.tmpfile(".json")
    local f = assert(io.open(path, "w"))
    f:write(json)
    f:close()
    local r = h.run(h.quote(h.sprof_lua) .. " -r " .. renderer .. " -o - --load " .. h.quote(path))
    assert.are.equal(0, r.status, r.err)
    return r.out
  end

  it("is read back by --load and groups what it marks", function ()
    local text = render(session(true), "text")
    assert.matches("lib  vendor/lib%.lua:1  %[1 frame hidden: 0%.010 s in lib%.lua%]", text)
    assert.is_nil(text:find("helper", 1, true))
    assert.matches("cb  x%.lua:5", text)
    assert.matches('"name":"helper","file":"vendor/lib.lua","line":9,"kind":"lua","library":true',
                   render(session(true), "json"), 1, true)
  end)

  it("is optional: without it, the path decides", function ()
    local text = render(session(false), "text")
    assert.matches("helper  vendor/lib%.lua:9", text)
    assert.is_nil(text:find("hidden", 1, true))
  end)
end)
