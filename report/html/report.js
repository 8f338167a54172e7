/*
** sprof report: builds the call tree, flame graph and timeline from the
** session JSON in #sprof-data. Everything that came from the profiled
** program (names, files) is put on the page as text: textContent, text
** nodes, canvas fillText, never markup.
*/
'use strict';

(function () {

  /* Children smaller than this share of the run wait behind a "more" row. */
  var MIN_SHARE = 0.001;
  /* Children shown at once under one node, and per click on "more". */
  var BATCH = 200;
  /* Nodes at least this share of the run start open, as does the hot path. */
  var OPEN_SHARE = 0.15;
  /* Search opens the way to at most this many of the largest matches. */
  var REVEAL = 30;
  var ROW_H = 20;              /* flame graph and timeline row, CSS px */
  var AXIS_H = 24;             /* timeline time axis */

  var $ = function (id) { return document.getElementById(id); };

  function el (tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }

  function clear (e) {
    while (e.firstChild) e.removeChild(e.firstChild);
  }

  /* ------------------------------------------------------------ formatting */

  function fmtSeconds (ns) {
    var s = ns / 1e9;
    if (s >= 100) return s.toFixed(1) + ' s';
    if (s >= 1) return s.toFixed(3) + ' s';
    if (s >= 0.001) return (s * 1e3).toFixed(s >= 0.1 ? 0 : 1) + ' ms';
    if (s > 0) return (s * 1e6).toFixed(0) + ' µs';
    return '0 s';
  }

  /* A time on the timeline's axis, with the decimals its step needs. */
  function fmtTick (ns, step) {
    var unit = step >= 1e9 ? 1e9 : step >= 1e6 ? 1e6 : 1e3;
    var digits = Math.max(0, Math.ceil(-Math.log10(step / unit) - 1e-9));
    if (ns === 0) return '0';
    return (ns / unit).toFixed(Math.min(digits, 3)) +
           (unit === 1e9 ? ' s' : unit === 1e6 ? ' ms' : ' µs');
  }

  function fmtInterval (s) {
    return s >= 1 ? +s.toPrecision(3) + ' s' : +(s * 1e3).toPrecision(3) + ' ms';
  }

  function fmtBytes (b) {
    var units = ['KiB', 'MiB', 'GiB', 'TiB'], u = -1;
    if (!(b >= 1024)) return Math.round(b || 0) + ' B';
    while (b >= 1024 && u < units.length - 1) { b /= 1024; u++; }
    return (b >= 100 ? b.toFixed(0) : b.toFixed(1)) + ' ' + units[u];
  }

  function fmtCount (n) {
    return Math.round(n).toLocaleString('en-US');
  }

  function fmtPercent (x) {
    if (x >= 0.9995) return '100%';
    if (x > 0 && x < 0.0005) return '<0.1%';
    return (x * 100).toFixed(1) + '%';
  }

  function pad2 (n) { return (n < 10 ? '0' : '') + n; }

  function fmtDate (unix) {
    if (!(unix > 0)) return '';
    var d = new Date(unix * 1000);
    return d.getFullYear() + '-' + pad2(d.getMonth() + 1) + '-' + pad2(d.getDate()) +
           ' ' + pad2(d.getHours()) + ':' + pad2(d.getMinutes()) + ':' + pad2(d.getSeconds());
  }

  function heat (share) {
    if (share >= 0.6) return 'heat-hot';
    if (share >= 0.3) return 'heat-warm';
    if (share >= 0.1) return 'heat-mild';
    return 'heat-cool';
  }

  function where (f) {
    if (f.kind === 'c') return '[C]';
    if (f.kind === 'pseudo') return '';
    return f.line > 0 ? f.file + ':' + f.line : f.file;
  }

  function kindClass (f) {
    if (f.kind === 'lua') return f.library ? 'kind-lib' : 'kind-lua';
    return 'kind-' + f.kind;
  }

  /* ----------------------------------------------------------- the profile */

  function str (x) { return typeof x === 'string' ? x : String(x == null ? '' : x); }

  /* A frame of the session's JSON, as the page uses it. */
  function frameFrom (f) {
    return {
      name: str(f.name), file: str(f.file), line: f.line | 0,
      kind: ['lua', 'c', 'native', 'pseudo'].indexOf(f.kind) >= 0 ? f.kind : 'lua',
      library: f.library === true,
      internal: f.internal === true,   /* the interpreter's own native code */
      host: f.host === true            /* native, above the Lua root */
    };
  }

  /* The session's stacks as a trie: node 0 is the root. */
  function loadProfile (data) {
    var frames = (data.frames || []).map(frameFrom);
    var nf = frames.length;
    var stacks = data.stacks || [];
    var P = new Trie(frames, stacks.length * 4 + 16);
    P.stackLeaf = new Int32Array(stacks.length);
    for (var i = 0; i < stacks.length; i++) {
      var s = stacks[i], path = s.frames || [], cur = 0;
      for (var k = 0; k < path.length; k++) {
        var f = path[k];
        if (f >= 0 && f < nf) cur = P.child(cur, f);
      }
      P.stackLeaf[i] = cur;
    }
    P.memory = +data.memory_rate > 0;
    P.weights = { time: weigh(P, stacks, WEIGHTS.time) };
    if (P.memory) {
      P.weights.alloc = weigh(P, stacks, WEIGHTS.alloc);
      P.weights.live = weigh(P, stacks, WEIGHTS.live);
    }
    return P;
  }

  /*
  ** What a view weighs: time, or for a memory profile the bytes allocated
  ** or still live at the end. The tree, flame graph and search take one of
  ** these; the timeline is always of time.
  */
  var WEIGHTS = {
    alloc: { name: 'alloc', label: 'Allocated', selfKey: 'alloc_bytes', countKey: 'alloc_objects',
             fmt: fmtBytes, counted: 'objects', of: 'of the bytes allocated',
             help: 'Bytes allocated during the run, by the stack that allocated them' },
    live: { name: 'live', label: 'Live', selfKey: 'live_bytes', countKey: 'live_objects',
            fmt: fmtBytes, counted: 'objects', of: 'of the live bytes',
            help: 'Bytes still allocated when the profile stopped, after a full collection' },
    time: { name: 'time', label: 'Time', selfKey: 'weight_ns', countKey: 'samples',
            fmt: fmtSeconds, counted: 'samples', of: 'of the time',
            help: 'Time: where the program spent its samples' }
  };

  /* Each trie node's own weight and count under one of the WEIGHTS; leaves
     (P.stackLeaf unless said) are the nodes where the stacks end. */
  function weigh (P, stacks, how, leaves) {
    var W = { self: new Float64Array(P.n), count: new Float64Array(P.n), total: 0 };
    leaves = leaves || P.stackLeaf;
    for (var k in how) W[k] = how[k];
    for (var i = 0; i < stacks.length; i++) {
      var leaf = leaves[i], w = +stacks[i][how.selfKey] || 0;
      W.self[leaf] += w;
      W.count[leaf] += +stacks[i][how.countKey] || 0;
      W.total += w;
    }
    return W;
  }

  /*
  ** The session's call tree in typed arrays (a hundred thousand nodes as
  ** objects keep the garbage collector busy for longer than the page may
  ** take to open). Children are a linked list, found by a scan while they
  ** are few and through a Map once they are many.
  */
  var SCAN = 12;

  function Trie (frames, capacity) {
    this.frames = frames;
    this.n = 0;
    this.big = new Map();   /* node with many children -> (frame -> child) */
    this.grow(capacity);
    this.add(-1, -1);       /* the root */
  }

  Trie.prototype.grow = function (capacity) {
    var self = this;
    function bigger (Type, old) {
      var a = new Type(capacity);
      if (old) a.set(old.subarray(0, self.n));
      return a;
    }
    this.frame = bigger(Int32Array, this.frame);
    this.parent = bigger(Int32Array, this.parent);
    this.first = bigger(Int32Array, this.first);
    this.next = bigger(Int32Array, this.next);
    this.nkids = bigger(Int32Array, this.nkids);
    this.capacity = capacity;
  };

  Trie.prototype.add = function (parent, frame) {
    if (this.n === this.capacity) this.grow(this.capacity * 2);
    var c = this.n++;
    this.frame[c] = frame;
    this.parent[c] = parent;
    this.first[c] = -1;
    this.next[c] = -1;
    if (parent >= 0) {
      this.next[c] = this.first[parent];
      this.first[parent] = c;
      var map = this.big.get(parent);
      if (map) map.set(frame, c);
      else if (++this.nkids[parent] > SCAN) {
        map = new Map();
        for (var k = this.first[parent]; k >= 0; k = this.next[k]) map.set(this.frame[k], k);
        this.big.set(parent, map);
      }
    }
    return c;
  };

  /* The child of node p for frame, made if new. */
  Trie.prototype.child = function (p, frame) {
    var map = this.big.get(p);
    if (map) {
      var c = map.get(frame);
      if (c !== undefined) return c;
    } else {
      for (var k = this.first[p]; k >= 0; k = this.next[k])
        if (this.frame[k] === frame) return k;
    }
    return this.add(p, frame);
  };

  function byTotal (a, b) { return b.total - a.total || a.frame - b.frame; }

  function isUserCode (f) { return f.kind === 'lua' && !f.library; }

  var NONE = [];   /* the children of a leaf: shared, never added to */

  /* Times start as -0, not 0: V8 then keeps them as doubles from the start,
     where a small integer 0 that later becomes a double makes it migrate
     every node built so far (measured: a third of the time of buildView). */
  var ZERO = -0;

  function folds (f, v, root) {
    return (f.internal && !options.showInternals) ||
           (f.host && !options.showHost && v === root);
  }

  /* A node's own weight (of the array self) as shown: with that of the
     interpreter's own frames under it, which fold into it. */
  function ownTime (P, self, r) {
    var t = self[r];
    for (var c = P.first[r]; c >= 0; c = P.next[c])
      if (P.frames[P.frame[c]].internal && !options.showInternals) t += ownTime(P, self, c);
    return t;
  }

  /* The file named for v's hidden frames: that of the Lua frame with the
     most own time (ties: the first by name), as view.c names it. */
  function hiddenFrom (v, file, self) {
    if (v.hiddenFile === null) v.hiddenFiles = 1;
    else if (v.hiddenFile !== file) v.hiddenFiles = 2;
    if (v.hiddenFile === null || self > v.hiddenFileTime ||
        (self === v.hiddenFileTime && file < v.hiddenFile)) {
      v.hiddenFile = file;
      v.hiddenFileTime = self;
    }
  }

  /*
  ** The tree shown, as view.c builds it for the text report: unless
  ** library frames are shown, what a library frame calls that is not the
  ** program's own code is hidden into it, the group ("[N frames hidden]"),
  ** except frames whose own time is at least options.selfThreshold of the
  ** run: those show under the group. The hidden frames' time is the
  ** group's (hiddenTime), not the function's self time. The interpreter's
  ** own native frames, and the host's above the root, go to the frame
  ** above them unless the report was asked to show them. W (one of
  ** P.weights) says what "time" is: time, or bytes. In a diff, W also
  ** has the before run's weights (bself): each node gets both runs'.
  */
  function buildView (P, W, showLibrary) {
    var nodes = [];
    var rawToView = new Int32Array(P.n);
    var big = new Map();   /* node id -> (frame -> child), for many children */
    var self = W.self, count = W.count, bself = W.bself;
    var hot = options.selfThreshold * W.total;
    var bhot = options.selfThreshold * (W.btotal || 0);
    /* a library frame shows inside its group with that much own time (in
       either run of a diff) */
    function isHot (c) {
      var own = ownTime(P, self, c);
      if (own > 0 && own >= hot) return true;
      return !!bself && (own = ownTime(P, bself, c)) > 0 && own >= bhot;
    }
    function vnode (frame, parent) {
      var v = {
        id: nodes.length, frame: frame, parent: parent, children: NONE,
        total: ZERO, self: ZERO, hiddenTime: ZERO, samples: ZERO, hidden: 0,
        hiddenFile: null, hiddenFileTime: ZERO, hiddenFiles: 0,
        depth: parent ? parent.depth + 1 : 0, shown: 0
      };
      if (bself) {   /* the before run's: total, self, hidden frames' */
        v.before = ZERO; v.bself = ZERO; v.bhidden = ZERO; v.change = ZERO;
      }
      nodes.push(v);
      return v;
    }
    function child (v, frame) {
      var kids = v.children, map = big.get(v.id), w, i;
      if (map) {
        w = map.get(frame);
        if (w) return w;
      } else {
        for (i = 0; i < kids.length; i++) if (kids[i].frame === frame) return kids[i];
      }
      w = vnode(frame, v);
      if (kids === NONE) kids = v.children = [];
      kids.push(w);
      if (map) map.set(frame, w);
      else if (kids.length > SCAN) {
        map = new Map();
        for (i = 0; i < kids.length; i++) map.set(kids[i].frame, kids[i]);
        big.set(v.id, map);
      }
      return w;
    }
    var root = vnode(-1, null);
    root.self = self[0];
    root.samples = count[0];
    if (bself) root.bself = bself[0];
    /* per node to visit: the view node it goes to, whether that is library
       code, whether the node itself was hidden */
    var todo = [0], into = [root], inLib = [false], inHidden = [false];
    while (todo.length) {
      var r = todo.pop(), v = into.pop(), lib = inLib.pop(), hid = inHidden.pop();
      for (var c = P.first[r]; c >= 0; c = P.next[c]) {
        var f = P.frames[P.frame[c]], w = v, hidden = hid;
        if (folds(f, v, root)) {
          if (hid) v.hiddenTime += self[c]; else v.self += self[c];
          if (bself) { if (hid) v.bhidden += bself[c]; else v.bself += bself[c]; }
        } else if (!showLibrary && lib && !isUserCode(f) && !isHot(c)) {
          hidden = true;
          v.hidden++;
          v.hiddenTime += self[c];
          if (bself) v.bhidden += bself[c];
          if (f.kind === 'lua') hiddenFrom(v, f.file, self[c]);
        } else {
          w = child(v, P.frame[c]);
          w.self += self[c];
          if (bself) w.bself += bself[c];
          hidden = false;
        }
        w.samples += count[c];
        rawToView[c] = w.id;
        todo.push(c); into.push(w); inHidden.push(hidden);
        inLib.push(w === v ? lib : f.library || (lib && !isUserCode(f)));
      }
    }
    /* parents come before their children: sum totals backwards */
    for (var j = nodes.length - 1; j >= 0; j--) {
      var n = nodes[j];
      n.total += n.self + n.hiddenTime;
      if (n.parent) n.parent.total += n.total;
      if (bself) {
        n.before += n.bself + n.bhidden;
        if (n.parent) n.parent.before += n.before;
      }
      if (n.children.length > 1) n.children.sort(byTotal);
    }
    nodes = prune(nodes, rawToView);
    var maxDepth = 0;
    for (j = 0; j < nodes.length; j++) if (nodes[j].depth > maxDepth) maxDepth = nodes[j].depth;
    var view = { nodes: nodes, root: root, rawToView: rawToView, total: root.total,
                 maxDepth: maxDepth, weight: W };
    if (bself) {
      view.btotal = root.before;
      sortByChange(view);
    }
    return view;
  }

  /* Drops what weighs nothing in its view (in a view of bytes, the stacks
     that only took time; in one of time, those that only allocated; in a
     diff, in neither run): ids are renumbered, and rawToView sends a
     dropped node to its nearest kept ancestor. */
  function prune (nodes, rawToView) {
    var to = new Int32Array(nodes.length), dead = new Uint8Array(nodes.length), kept = [];
    for (var j = 0; j < nodes.length; j++) {
      var n = nodes[j];
      if (n.parent && (dead[n.parent.id] || (n.total <= 0 && !(n.before > 0)))) {
        dead[j] = 1;
        to[j] = to[n.parent.id];
      } else {
        to[j] = kept.length;
        kept.push(n);
      }
    }
    if (kept.length === nodes.length) return nodes;
    for (j = 0; j < kept.length; j++) {
      var kids = kept[j].children;
      if (diff) kids = kept[j].children = kids.filter(function (k) { return !dead[k.id]; });
      else while (kids.length && dead[kids[kids.length - 1].id]) kids.pop();  /* sorted: last */
      if (kids.length === 0) kept[j].children = NONE;
    }
    for (j = 0; j < kept.length; j++) kept[j].id = j;
    for (j = 0; j < rawToView.length; j++) rawToView[j] = to[rawToView[j]];
    return kept;
  }

  /* ------------------------------------------------------------------ state */

  /* A share written by the C side (a comma if the program set a locale). */
  function shareOf (text, dflt) {
    var x = parseFloat(String(text).replace(',', '.'));
    return x >= 0 && x <= 1 ? x : dflt;
  }

  var data, P, V;
  var TV = null;   /* the view of time the timeline draws, when V is of bytes */
  var frames = [];
  var page = document.documentElement.dataset;
  var options = {   /* as the report was rendered (RenderOptions) */
    showAll: page.showAll === 'true',
    showInternals: page.showInternals === 'true',
    showHost: page.showHost === 'true',
    selfThreshold: shareOf(page.selfThreshold, 0.2),
    memoryView: page.memoryView || ''   /* "alloc", "live", "time" or "" */
  };
  var state = {
    view: 'tree',
    showLibrary: false,
    expanded: new Set(),      /* view nodes open in the tree */
    query: '',
    matchFrame: null,         /* Uint8Array: frame matches the search */
    matches: [],              /* matching view nodes, largest first */
    current: -1,              /* the match Enter last went to */
    flameZoom: null,          /* view node the flame graph is zoomed to */
    span: null                /* [t0, t1] of the timeline, ns */
  };

  /* v's share of its view (V unless said). */
  function share (v, view) {
    view = view || V;
    return view.total > 0 ? v.total / view.total : 0;
  }

  /* A weight of V as shown: seconds or bytes. */
  function fmtWeight (x) { return V.weight.fmt(x); }

  function timeView () {
    if (V.weight.name === 'time') return V;
    if (!TV) TV = buildView(P, P.weights.time, state.showLibrary);
    return TV;
  }

  function frameOf (v) { return v.frame >= 0 ? frames[v.frame] : null; }

  function rootLabel () { return data.program ? str(data.program) : 'all'; }

  /* --------------------------------------------------------------- header */

  function fact (label, value, sub, title) {
    var box = el('div', 'fact');
    box.appendChild(el('span', 'label', label));
    var val = el('span', 'value', value);
    if (sub) {
      val.appendChild(document.createTextNode(' '));
      val.appendChild(el('span', 'sub', sub));
    }
    box.appendChild(val);
    if (title) box.title = title;
    return box;
  }

  function renderHeader () {
    if (diff) { renderDiffHeader(); return; }
    var program = data.program ? str(data.program) : 'Profile';
    $('program').textContent = program;
    $('program').title = program;
    document.title = program + ' — sprof';
    var when = fmtDate(+data.start_time);
    $('recorded').textContent = when ? 'Recorded ' + when : '';

    var facts = $('facts');
    var duration = +data.duration_ns || 0, samples = +data.samples || 0;
    var secs = duration / 1e9;
    clear(facts);
    facts.appendChild(fact('Duration', fmtSeconds(duration)));
    if (P.memory) memoryFacts(facts);
    if (samples > 0 || !P.memory) {
      facts.appendChild(fact('Samples', fmtCount(samples),
                             secs > 0 ? fmtCount(samples / secs) + '/s' : null));
      if (!P.memory) facts.appendChild(fact('Interval', fmtInterval(+data.interval || 0)));
      facts.appendChild(fact('Clock', data.clock === 'cpu' ? 'CPU' : 'wall', null,
        data.clock === 'cpu' ? 'Samples weigh CPU time of the profiled thread'
                             : 'Samples weigh wall time: waiting counts'));
    }
    if (duration > 0) {
      var cpu = (+data.cpu_ns || 0) / duration;
      facts.appendChild(fact('CPU', Math.round(cpu * 100) + '%', 'of wall time',
                             'CPU time of the profiled thread over the run'));
      var over = (+data.overhead_ns || 0) / duration;
      var sampler = (+data.sampler_ns || 0) / duration;
      var title = (over * 100).toFixed(2) + '% of the run in the program\'s thread (' +
                  fmtSeconds(+data.overhead_ns || 0) + ')';
      if (sampler > 0) title += ', ' + (sampler * 100).toFixed(2) + '% of a CPU in the sampler thread';
      facts.appendChild(fact('Overhead', (over * 100).toFixed(2) + '%',
                             sampler > 0 ? '+ ' + (sampler * 100).toFixed(2) + '% sampler' : null,
                             'Profiler overhead: ' + title));
    }
  }

  function memoryFacts (facts) {
    var alloc = P.weights.alloc, live = P.weights.live, rate = +data.memory_rate;
    var objects = function (W) { return fmtCount(sum(W.count)) + ' objects'; };
    facts.appendChild(fact('Allocated', fmtBytes(alloc.total), objects(alloc),
                           'Bytes allocated while profiling (estimated from the sampled allocations)'));
    facts.appendChild(fact('Live at end', fmtBytes(live.total), null,
                           'Still allocated when the profile stopped, after a full collection: ' +
                           objects(live)));
    facts.appendChild(fact('Sampled every', fmtBytes(rate), null,
                           'One allocation sampled per ' + fmtBytes(rate) + ' allocated on average ' +
                           '(Poisson); each stands for the bytes around it, so totals are unbiased'));
  }

  function sum (a) {
    var t = 0;
    for (var i = 0; i < a.length; i++) t += a[i];
    return t;
  }

  /* ------------------------------------------------------------- call tree */

  var rowOf = new WeakMap();   /* view node -> its row, while shown */

  /* Text with the search's matches in <mark>: text nodes only. */
  function putMatched (parent, text) {
    var q = state.query;
    var lower = text.toLowerCase();
    if (!q || lower.length !== text.length || lower.indexOf(q) < 0) {
      parent.appendChild(document.createTextNode(text));
      return;
    }
    var at = 0, hit;
    while ((hit = lower.indexOf(q, at)) >= 0) {
      if (hit > at) parent.appendChild(document.createTextNode(text.slice(at, hit)));
      parent.appendChild(el('mark', null, text.slice(hit, hit + q.length)));
      at = hit + q.length;
    }
    if (at < text.length) parent.appendChild(document.createTextNode(text.slice(at)));
  }

  function hasKids (v) { return v.children.length > 0; }

  /* The root's own time (samples with no frame to show, such as the
     host's code outside Lua) as a row of its own, as the text report has. */
  var outside = null;
  function outsideLua () {
    if (outside === null || outside.parent !== V.root) {
      outside = {
        id: -1, frame: -1, parent: V.root, children: NONE, total: V.root.self,
        self: V.root.self, hiddenTime: 0, samples: V.root.samples, hidden: 0,
        hiddenFile: null, hiddenFiles: 0, depth: 1, shown: 0
      };
      if (diff) {
        outside.before = V.root.bself;
        outside.change = changeOf(outside);
      }
    }
    return outside;
  }

  function hiddenLabel (v) {
    return v.hidden + ' frame' + (v.hidden > 1 ? 's' : '') + ' hidden';
  }

  function makeRow (v) {
    var f = frameOf(v), s = share(v);
    var row = el('div', 'row ' + (f ? kindClass(f) : 'kind-pseudo'));
    row.setAttribute('role', 'treeitem');
    row.setAttribute('aria-level', String(v.depth));
    row.tabIndex = -1;
    row.style.setProperty('--d', String(v.depth - 1));
    row.sprofNode = v;
    if (hasKids(v)) row.setAttribute('aria-expanded', String(state.expanded.has(v)));
    if (f && state.matchFrame && state.matchFrame[v.frame]) row.classList.add('match');

    if (diff) diffCells(row, v);
    else {
      row.appendChild(el('span', 'c-total ' + heat(s), fmtWeight(v.total)));
      var sh = el('span', 'c-share');
      var bar = el('span', 'share-bar'), fill = el('span', heat(s));
      fill.style.width = Math.max(s * 100, s > 0 ? 2 : 0).toFixed(1) + '%';
      bar.appendChild(fill);
      sh.appendChild(bar);
      sh.appendChild(document.createTextNode(fmtPercent(s)));
      row.appendChild(sh);
      row.appendChild(el('span', 'c-self' + (v.self > 0 ? '' : ' zero'),
                         v.self > 0 ? fmtWeight(v.self) : '–'));
    }

    var name = el('span', 'c-name');
    name.appendChild(el('span', 'toggle' + (hasKids(v) ? '' : ' leaf')));
    if (f && f.kind === 'c') name.appendChild(el('span', 'badge', 'C'));
    else if (f && f.kind === 'native') name.appendChild(el('span', 'badge', 'native'));
    else if (f && f.library) name.appendChild(el('span', 'badge', 'lib'));
    var fn = el('span', 'fn');
    putMatched(fn, f ? f.name : '(outside Lua)');
    name.appendChild(fn);
    var loc = f ? where(f) : '';
    if (loc) {
      var w = el('span', 'where');
      putMatched(w, loc);
      name.appendChild(w);
    }
    if (v.hidden > 0) {
      var pill = el('span', 'hidden-frames', '[' + hiddenLabel(v) +
                    (v.hiddenTime > 0 ? ': ' + fmtWeight(v.hiddenTime) : '') + ']');
      pill.title = 'Library code called from here' +
                   (v.hiddenFile ? ' (' + v.hiddenFile + (v.hiddenFiles > 1 ? ' and others' : '') + ')' : '') +
                   ' is hidden in this group: ' + fmtWeight(v.hiddenTime) +
                   (V.weight.name === 'time'
                     ? ' of its own time, not counted as this function\'s self time.'
                     : ' it allocated itself, not counted as this function\'s own.') +
                   ' Click to show library frames.';
      pill.sprofAction = 'library';
      name.appendChild(pill);
    }
    name.title = (f ? f.name + (loc ? '  ' + loc : '')
                    : 'Samples with no frame to show: the host, outside Lua') +
                 (diff ? '\nbefore ' + fmtWeight(v.before) + ', after ' + fmtWeight(v.total) : '') +
                 '\nself ' + fmtWeight(v.self) +
                 (v.hidden > 0 ? ', hidden frames ' + fmtWeight(v.hiddenTime) : '') +
                 ', ' + fmtCount(v.samples) + ' ' + V.weight.counted + ' here';
    row.appendChild(name);
    rowOf.set(v, row);
    return row;
  }

  /* How many children of v a fresh render shows. */
  function initialShown (v) {
    var n = 0, min = MIN_SHARE * V.total;
    if (diff) {   /* sorted by change, the small ones last */
      while (n < v.children.length && n < BATCH && !v.children[n].small) n++;
      return Math.max(n, Math.min(v.children.length, 1));
    }
    while (n < v.children.length && n < BATCH && v.children[n].total >= min) n++;
    return Math.max(n, Math.min(v.children.length, 1));
  }

  function makeMoreRow (v, group) {
    var rest = v.children.slice(v.shown);
    var t = 0;
    for (var i = 0; i < rest.length; i++) t += rest[i].total;
    var row = el('div', 'row more');
    row.setAttribute('role', 'treeitem');
    row.tabIndex = -1;
    row.style.setProperty('--d', String(v.depth));
    if (diff) ['c-before', 'c-after', 'c-change', 'c-rel'].forEach(function (c) {
      row.appendChild(el('span', c));
    });
    else {
      row.appendChild(el('span', 'c-total', fmtWeight(t)));
      row.appendChild(el('span', 'c-share', fmtPercent(V.total > 0 ? t / V.total : 0)));
      row.appendChild(el('span', 'c-self'));
    }
    var name = el('span', 'c-name');
    name.appendChild(el('span', 'toggle leaf'));
    name.appendChild(document.createTextNode(
      '+ ' + fmtCount(rest.length) + ' more frame' + (rest.length > 1 ? 's' : '') +
      (rest.length > BATCH ? ' (show ' + BATCH + ')' : '')));
    row.appendChild(name);
    row.sprofMore = { node: v, group: group };
    return row;
  }

  /* The rows of v's children, and recursively of the open ones. */
  function fillGroup (group, v) {
    if (v.shown === 0) v.shown = initialShown(v);
    for (var i = 0; i < v.shown && i < v.children.length; i++)
      group.appendChild(makeSubtree(v.children[i]));
    if (v.shown < v.children.length) group.appendChild(makeMoreRow(v, group));
  }

  function makeSubtree (v) {
    var box = el('div', 'node');
    box.appendChild(makeRow(v));
    if (state.expanded.has(v) && hasKids(v)) {
      var group = el('div', 'group');
      group.setAttribute('role', 'group');
      fillGroup(group, v);
      box.appendChild(group);
    }
    return box;
  }

  function renderTree () {
    var tree = $('tree');
    var focused = document.activeElement && document.activeElement.sprofNode;
    clear(tree);
    if (V.total <= 0 && V.root.children.length === 0) {
      tree.appendChild(el('div', 'empty', emptyText()));
      return;
    }
    var top = el('div', 'group');
    fillGroup(top, V.root);
    if (V.root.self > 0) top.appendChild(makeSubtree(outsideLua()));
    tree.appendChild(top);
    var first = tree.querySelector('.row');
    if (first) first.tabIndex = 0;
    if (focused && rowOf.has(focused) && rowOf.get(focused).isConnected) focusRow(rowOf.get(focused));
  }

  function emptyText () {
    var name = V.weight.name;
    if (name === 'alloc')
      return 'No allocation was sampled: the program allocated less than about ' +
             fmtBytes(+data.memory_rate) + ' (the sampling rate) while profiled.';
    if (name === 'live')
      return 'Nothing sampled was still allocated when the profile stopped.';
    return 'No samples were recorded: the program ran ' +
           'for less than one sampling interval, or the profiler was not running.';
  }

  /* Opens or closes v's row in place. */
  function setOpen (v, open) {
    var row = rowOf.get(v);
    if (open) state.expanded.add(v); else state.expanded.delete(v);
    if (!row || !row.isConnected || !hasKids(v)) return;
    row.setAttribute('aria-expanded', String(open));
    var box = row.parentNode, group = row.nextSibling;
    if (group) box.removeChild(group);
    if (open) {
      group = el('div', 'group');
      group.setAttribute('role', 'group');
      fillGroup(group, v);
      box.appendChild(group);
    }
  }

  /* Alt-click: the whole subtree open (as far as is sensible) or closed. */
  function setOpenDeep (v, open) {
    var todo = [v], budget = 5000, min = open ? MIN_SHARE * V.total : 0;
    while (todo.length) {
      var n = todo.pop();
      if (!hasKids(n)) continue;
      if (open) {
        if (budget-- <= 0 || (n !== v && n.total < min)) continue;
        state.expanded.add(n);
      } else {
        state.expanded.delete(n);
      }
      for (var i = 0; i < n.children.length; i++) todo.push(n.children[i]);
    }
    var row = rowOf.get(v);
    if (row && row.isConnected) {
      var box = row.parentNode;
      box.parentNode.replaceChild(makeSubtree(v), box);
      focusRow(rowOf.get(v));
    }
  }

  /* The hot path: the heaviest child, down to a leaf, and big nodes. */
  function openHotPath () {
    var v = V.root, guard = 0;
    while (v.children.length && guard++ < 400) {
      state.expanded.add(v);
      v = v.children[0];
    }
    for (var i = 1; i < V.nodes.length; i++) {
      var n = V.nodes[i];
      if (hasKids(n) && share(n) >= OPEN_SHARE) state.expanded.add(n);
    }
  }

  /* Opens every node above v, so v gets a row. */
  function reveal (v) {
    var chain = [];
    for (var p = v.parent; p; p = p.parent) chain.push(p);
    for (var i = chain.length - 1; i >= 0; i--) {
      var n = chain[i];
      state.expanded.add(n);
      var k = n.children.indexOf(i > 0 ? chain[i - 1] : v);
      n.shown = Math.max(n.shown || initialShown(n), k + 1);
    }
  }

  function focusRow (row) {
    if (!row) return;
    var old = $('tree').querySelectorAll('.row[tabindex="0"]');
    for (var i = 0; i < old.length; i++) old[i].tabIndex = -1;
    row.tabIndex = 0;
    row.focus({ preventScroll: true });
    var r = row.getBoundingClientRect();
    var top = $('view-tree').querySelector('.tree-head').getBoundingClientRect().bottom;
    var toolbar = document.querySelector('.toolbar').getBoundingClientRect().bottom;
    if (r.top < Math.max(top, toolbar) || r.bottom > window.innerHeight)
      row.scrollIntoView({ block: 'center' });
  }

  function onTreeClick (e) {
    var t = e.target;
    if (t.sprofAction === 'library') {
      e.stopPropagation();
      setShowLibrary(true);
      return;
    }
    var row = t.closest ? t.closest('.row') : null;
    if (!row) return;
    if (row.sprofMore) {
      var m = row.sprofMore, from = m.node.shown;
      m.node.shown = Math.min(m.node.children.length, from + BATCH);
      for (var i = from; i < m.node.shown; i++)
        m.group.insertBefore(makeSubtree(m.node.children[i]), row);
      if (m.node.shown < m.node.children.length)
        m.group.replaceChild(makeMoreRow(m.node, m.group), row);
      else
        m.group.removeChild(row);
      return;
    }
    var v = row.sprofNode;
    if (!v) return;
    focusRow(row);
    if (!hasKids(v)) return;
    if (e.altKey) setOpenDeep(v, !state.expanded.has(v));
    else setOpen(v, !state.expanded.has(v));
  }

  function visibleRows () {
    return Array.prototype.slice.call($('tree').querySelectorAll('.row'));
  }

  function onTreeKey (e) {
    var row = document.activeElement;
    if (!row || !row.classList || !row.classList.contains('row')) return;
    var v = row.sprofNode, rows, i;
    switch (e.key) {
      case 'ArrowDown': case 'ArrowUp':
        rows = visibleRows();
        i = rows.indexOf(row) + (e.key === 'ArrowDown' ? 1 : -1);
        if (i >= 0 && i < rows.length) focusRow(rows[i]);
        break;
      case 'Home': case 'End':
        rows = visibleRows();
        focusRow(rows[e.key === 'Home' ? 0 : rows.length - 1]);
        break;
      case 'ArrowRight':
        if (!v || !hasKids(v)) break;
        if (!state.expanded.has(v)) setOpen(v, true);
        else focusRow(rowOf.get(v.children[0]));
        break;
      case 'ArrowLeft':
        if (v && state.expanded.has(v) && hasKids(v)) setOpen(v, false);
        else if (v && v.parent && rowOf.get(v.parent) && rowOf.get(v.parent).isConnected)
          focusRow(rowOf.get(v.parent));
        break;
      case 'Enter': case ' ':
        row.click();
        break;
      default:
        return;
    }
    e.preventDefault();
  }

  /* ----------------------------------------------------------------- search */

  function runSearch (q) {
    state.query = q.trim().toLowerCase();
    state.current = -1;
    state.matches = [];
    state.matchFrame = null;
    var info = $('search-info');
    if (state.query) {
      var mf = new Uint8Array(frames.length), nframes = 0;
      for (var i = 0; i < frames.length; i++) {
        var f = frames[i];
        if (f.name.toLowerCase().indexOf(state.query) >= 0 ||
            where(f).toLowerCase().indexOf(state.query) >= 0) {
          mf[i] = 1;
          nframes++;
        }
      }
      state.matchFrame = mf;
      collectMatches();
      info.textContent = state.matches.length === 0 ? 'no match'
        : nframes + ' function' + (nframes > 1 ? 's' : '') + ' · ' +
          fmtPercent(matchedShare()) + ' ' + V.weight.of;
      for (i = 0; i < state.matches.length && i < REVEAL; i++) reveal(state.matches[i]);
    } else {
      info.textContent = '';
    }
    refresh();
  }

  function collectMatches () {
    var mf = state.matchFrame;
    state.matches = [];
    if (!mf) return;
    for (var i = 1; i < V.nodes.length; i++)
      if (mf[V.nodes[i].frame]) state.matches.push(V.nodes[i]);
    state.matches.sort(function (a, b) { return b.total - a.total || a.id - b.id; });
  }

  /* The share of the run with a matching frame on the stack. */
  function matchedShare () {
    var mf = state.matchFrame, covered = new Uint8Array(V.nodes.length), t = 0;
    for (var i = 1; i < V.nodes.length; i++) {
      var v = V.nodes[i], up = covered[v.parent.id];
      if (!up && mf[v.frame]) t += v.total;
      covered[i] = up || mf[v.frame];
    }
    return V.total > 0 ? t / V.total : 0;
  }

  /* Enter in the search box: the next match, in the tree. */
  function nextMatch (back) {
    if (state.matches.length === 0) return;
    var n = state.matches.length;
    state.current = (state.current + (back ? n - 1 : 1) + n) % n;
    var row = openInTree(state.matches[state.current]);
    if (row) row.scrollIntoView({ block: 'center' });
  }

  /* The tree, open at node v, with its row marked current (returned). */
  function openInTree (v) {
    if (state.view !== 'tree') setView('tree');
    reveal(v);
    renderTree();
    var old = $('tree').querySelector('.row.current');
    if (old) old.classList.remove('current');
    var row = rowOf.get(v);
    if (row) row.classList.add('current');
    return row;
  }

  /* ------------------------------------------------------- canvas painting */

  var palette = null;   /* colours of the current theme */

  function themeColors () {
    var css = getComputedStyle(document.documentElement);
    var dark = window.matchMedia && window.matchMedia('(prefers-color-scheme: dark)').matches;
    return {
      dark: dark,
      muted: css.getPropertyValue('--muted').trim() || '#777',
      border: css.getPropertyValue('--border').trim() || '#ddd',
      cache: new Map()   /* frame -> fill */
    };
  }

  function hash (s) {
    var h = 2166136261;
    for (var i = 0; i < s.length; i++) {
      h ^= s.charCodeAt(i);
      h = Math.imul(h, 16777619);
    }
    return (h >>> 0) / 4294967296;
  }

  /* A frame's fill: warm for Lua, blue for C, violet for native, grey for
  ** markers; the name picks a shade so neighbours differ. */
  function fillOf (frameIndex) {
    var c = palette.cache.get(frameIndex);
    if (c) return c;
    var f = frameIndex >= 0 ? frames[frameIndex] : null;
    var h = f ? hash(f.name + '\u0000' + f.file) : 0.5;
    var d = palette.dark, hue, sat, light;
    if (!f) { hue = 220; sat = 8; light = d ? 34 : 82; }
    else if (f.kind === 'c') { hue = 195 + h * 30; sat = 62; light = d ? 42 : 66; }
    else if (f.kind === 'native') { hue = 255 + h * 25; sat = 48; light = d ? 46 : 72; }
    else if (f.kind === 'pseudo') { hue = 220; sat = 8; light = d ? 40 : 74; }
    else if (f.library) { hue = 28 + h * 18; sat = 26; light = d ? 38 : 68; }
    else { hue = 8 + h * 40; sat = 80; light = d ? 48 : 62; }
    c = 'hsl(' + hue.toFixed(0) + ' ' + sat + '% ' + (light + (h - 0.5) * 8).toFixed(0) + '%)';
    palette.cache.set(frameIndex, c);
    return c;
  }

  var FONT = '12px ' + (getComputedStyle(document.documentElement).getPropertyValue('--mono') || 'monospace');
  var charWidth = 7.2;

  function sizeCanvas (canvas, width, height) {
    var ratio = window.devicePixelRatio || 1;
    canvas.style.width = width + 'px';
    canvas.style.height = height + 'px';
    canvas.width = Math.max(1, Math.round(width * ratio));
    canvas.height = Math.max(1, Math.round(height * ratio));
    var ctx = canvas.getContext('2d');
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.font = FONT;
    ctx.textBaseline = 'middle';
    charWidth = ctx.measureText('MMMMMMMMMM').width / 10 || 7.2;
    return ctx;
  }

  function fitLabel (text, width) {
    var n = Math.floor((width - 8) / charWidth);
    if (n >= text.length) return text;
    if (n < 3) return '';
    return text.slice(0, n - 1) + '…';
  }

  /* One block of the flame graph or timeline. */
  function paintBlock (ctx, x, y, w, frameIndex, label, dim, fill) {
    ctx.globalAlpha = dim ? 0.28 : 1;
    ctx.fillStyle = fill || fillOf(frameIndex);
    /* a gap between blocks wide enough to show one */
    ctx.fillRect(x, y, w >= 3 ? w - 1 : Math.max(w, 0.5), ROW_H - 1);
    if (w >= 24) {
      var text = fitLabel(label, w);
      if (text) {
        ctx.fillStyle = palette.dark ? 'rgba(255,255,255,0.92)' : 'rgba(20,20,30,0.9)';
        ctx.fillText(text, x + 4, y + ROW_H / 2);
      }
    }
    ctx.globalAlpha = 1;
  }

  function dimmed (v) {
    return state.matchFrame !== null && !(v.frame >= 0 && state.matchFrame[v.frame]);
  }

  function labelOf (v) { return v.frame >= 0 ? frames[v.frame].name : rootLabel(); }

  /* ---------------------------------------------------------------- tooltip */

  /* The tooltip of v, a node of view (V unless said). */
  function showTip (e, v, extra, view) {
    var tip = $('tooltip'), f = frameOf(v);
    view = view || V;
    var fmt = view.weight.fmt;
    clear(tip);
    tip.appendChild(el('div', 't-name', labelOf(v)));
    var loc = f ? where(f) : '';
    if (loc) tip.appendChild(el('div', 't-where', loc));
    function line (k, val) {
      var r = el('div', 't-row');
      r.appendChild(el('span', null, k));
      r.appendChild(el('span', null, val));
      tip.appendChild(r);
    }
    (extra || []).forEach(function (kv) { line(kv[0], kv[1]); });
    if (diff) diffTip(v, view, line);
    line('total', fmt(v.total) + '  ' + fmtPercent(share(v, view)));
    line('self', fmt(v.self));
    line(view.weight.counted, fmtCount(v.samples));
    if (f) line('kind', f.kind === 'lua' ? (f.library ? 'Lua (library)' : 'Lua') :
                        f.kind === 'c' ? 'C function' : f.kind);
    if (v.hidden > 0) line('hidden', hiddenLabel(v) + ', ' + fmt(v.hiddenTime));
    placeTip(e);
  }

  /* Shows the tooltip, filled, next to the mouse and inside the window. */
  function placeTip (e) {
    var tip = $('tooltip');
    tip.hidden = false;
    var x = e.clientX + 14, y = e.clientY + 16;
    var r = tip.getBoundingClientRect();
    if (x + r.width > window.innerWidth - 8) x = Math.max(8, e.clientX - r.width - 14);
    if (y + r.height > window.innerHeight - 8) y = Math.max(8, e.clientY - r.height - 16);
    tip.style.left = x + 'px';
    tip.style.top = y + 'px';
  }

  function hideTip () { $('tooltip').hidden = true; }

  /* ------------------------------------------------------------ flame graph */

  var flameRects = [];   /* per depth: [{x, w, v}] as last painted */

  function drawFlame () {
    var wrap = $('flame-wrap'), canvas = $('flame');
    var width = wrap.clientWidth;
    if (width <= 0) return;
    var zoom = state.flameZoom || V.root;
    var scale = zoom.total > 0 ? width / zoom.total : 0;
    var rects = [];
    var chain = [];
    for (var p = zoom; p; p = p.parent) chain.unshift(p);
    chain.forEach(function (a) { rects[a.depth] = [{ x: 0, w: width, v: a, above: a !== zoom }]; });
    /* lay out what is wide enough to see */
    var todo = [zoom], xs = [0];
    while (todo.length) {
      var v = todo.pop(), x = xs.pop(), kids = flameKids(v);
      for (var i = 0; i < kids.length; i++) {
        var c = kids[i], w = c.total * scale;
        if (w < 0.4) break;  /* sorted: the rest are narrower */
        (rects[c.depth] || (rects[c.depth] = [])).push({ x: x, w: w, v: c });
        if (c.children.length) { todo.push(c); xs.push(x); }
        x += w;
      }
    }
    var height = Math.max(rects.length * ROW_H + 4, 120);
    var ctx = sizeCanvas(canvas, width, height);
    ctx.clearRect(0, 0, width, height);
    for (var d = 0; d < rects.length; d++) {
      var row = rects[d] || (rects[d] = []);
      row.sort(function (a, b) { return a.x - b.x; });
      for (var k = 0; k < row.length; k++) {
        var r = row[k];
        paintBlock(ctx, r.x, d * ROW_H, r.w, r.v.frame, labelOf(r.v), r.above || dimmed(r.v),
                   diff ? changeFill(r.v.change) : null);
      }
    }
    if (V.total <= 0) {
      ctx.fillStyle = palette.muted;
      ctx.fillText(V.weight.name === 'time' ? 'No samples in this session.'
                                            : 'No sampled bytes in this view.', 12, ROW_H * 2);
    }
    flameRects = rects;
    renderCrumbs();
  }

  function flameHit (e) {
    var box = $('flame').getBoundingClientRect();
    var x = e.clientX - box.left, d = Math.floor((e.clientY - box.top) / ROW_H);
    var row = flameRects[d];
    if (!row) return null;
    for (var i = 0; i < row.length; i++)
      if (x >= row[i].x && x < row[i].x + row[i].w) return row[i].v;
    return null;
  }

  function zoomFlame (v) {
    state.flameZoom = v && v !== V.root ? v : null;
    drawFlame();
  }

  function renderCrumbs () {
    var box = $('flame-crumbs'), zoom = state.flameZoom || V.root;
    clear(box);
    var chain = [];
    for (var p = zoom; p; p = p.parent) chain.unshift(p);
    chain.forEach(function (v, i) {
      if (i > 0) box.appendChild(el('span', 'sep', '›'));
      var b = el('button', v === zoom ? 'here' : null, labelOf(v));
      b.type = 'button';
      b.title = labelOf(v) + ' — ' + fmtPercent(share(v));
      b.addEventListener('click', function () { zoomFlame(v); });
      box.appendChild(b);
    });
    if (state.flameZoom) {
      var reset = el('button', 'reset', 'Reset zoom');
      reset.type = 'button';
      reset.addEventListener('click', function () { zoomFlame(null); });
      box.appendChild(reset);
    }
  }

  /* --------------------------------------------------------------- timeline */

  var TL = null;          /* the timeline's samples, prepared once */
  var timelineRuns = [];  /* per depth: [{x0, x1, v, t0, t1}] as last painted */

  function prepareTimeline () {
    var tl = data.timeline || {}, t = tl.t_ns || [], st = tl.stack || [];
    var hp = Array.isArray(tl.heap) && tl.heap.length === t.length ? tl.heap : null;
    var n = Math.min(t.length, st.length);
    var times = new Float64Array(n), leaf = new Int32Array(n), m = 0;
    var heap = hp ? new Float64Array(n) : null, peak = -1;
    for (var i = 0; i < n; i++) {
      var k = st[i];
      if (!(k >= 0 && k < P.stackLeaf.length)) continue;
      times[m] = +t[i];
      if (heap) {
        heap[m] = +hp[i] || 0;
        if (peak < 0 || heap[m] > heap[peak]) peak = m;
      }
      leaf[m++] = P.stackLeaf[k];
    }
    times = times.subarray(0, m);
    leaf = leaf.subarray(0, m);
    /* a session from before the heap was recorded: no line */
    if (heap && !(peak >= 0 && heap[peak] > 0)) heap = null;
    else if (heap) heap = heap.subarray(0, m);
    /* the usual gap between kept samples: a sample stands for the time
       since the one before, unless the profiler was stopped in between */
    var gaps = [];
    for (i = 1; i < m; i += Math.max(1, Math.floor(m / 2000))) gaps.push(times[i] - times[i - 1]);
    gaps.sort(function (a, b) { return a - b; });
    var typical = gaps.length ? gaps[gaps.length >> 1] : (+data.interval || 0.001) * 1e9;
    if (!(typical > 0)) typical = (+data.interval || 0.001) * 1e9;
    var end = m ? times[m - 1] : 0;
    /* One recording: every sample covers the time since the previous one,
       however late it came. Several (stop, then start again): the time
       between them was not recorded, and long gaps show as empty. */
    var unrecorded = end - (+data.duration_ns || 0);
    var maxGap = unrecorded > Math.max(typical * 10, end * 0.02)
      ? Math.max(typical * 20, 0.05e9) : Infinity;
    return { times: times, leaf: leaf, heap: heap, n: m, typical: typical, maxGap: maxGap, end: end };
  }

  /* The kept sample whose time covers instant t, or -1. */
  function sampleAt (t) {
    var a = 0, b = TL.n;
    while (a < b) {
      var mid = (a + b) >> 1;
      if (TL.times[mid] < t) a = mid + 1; else b = mid;
    }
    if (a >= TL.n) return -1;
    var before = a > 0 ? TL.times[a - 1] : 0;
    var from = TL.times[a] - before > TL.maxGap ? TL.times[a] - TL.typical : before;
    return t > from ? a : -1;
  }

  function timelineNote () {
    var note = $('timeline-note'), total = +data.samples || 0;
    var text = 'drag to zoom into a range · click a block to zoom to it · Esc zooms out';
    if (TL.n > 0 && total > TL.n)
      text = 'showing ' + fmtCount(TL.n) + ' of ' + fmtCount(total) +
             ' samples (the timeline is thinned; the tree is exact) · ' + text;
    note.textContent = text;
  }

  function niceStep (span, target) {
    var raw = span / target, p = Math.pow(10, Math.floor(Math.log10(raw)));
    var m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
  }

  function drawTimeline () {
    var wrap = $('timeline-wrap'), canvas = $('timeline'), tv = timeView();
    var width = wrap.clientWidth;
    if (width <= 0) return;
    var span = state.span || [0, Math.max(TL.end, 1)];
    var t0 = span[0], t1 = span[1], per = (t1 - t0) / width;
    var runs = [], open = [], chain = [];
    function close (d, x) {
      var o = open[d];
      if (!o) return;
      (runs[d] || (runs[d] = [])).push({ x0: o.x, x1: x, v: o.v, t0: t0 + o.x * per, t1: t0 + x * per });
      open[d] = null;
    }
    for (var x = 0; x <= width; x++) {
      var i = x < width ? sampleAt(t0 + (x + 0.5) * per) : -1;
      chain.length = 0;
      if (i >= 0) {
        for (var v = tv.nodes[tv.rawToView[TL.leaf[i]]]; v && v.parent; v = v.parent) chain.push(v);
        chain.reverse();
      }
      var depth = Math.max(chain.length, open.length);
      for (var d = 0; d < depth; d++) {
        var w = chain[d];
        if (open[d] && open[d].v === w) continue;
        close(d, x);
        if (w) open[d] = { x: x, v: w };
      }
    }
    var height = Math.max(AXIS_H + runs.length * ROW_H + 4, 140);
    var ctx = sizeCanvas(canvas, width, height);
    ctx.clearRect(0, 0, width, height);
    drawAxis(ctx, width, t0, t1);
    for (d = 0; d < runs.length; d++) {
      var row = runs[d] || (runs[d] = []);
      for (var k = 0; k < row.length; k++) {
        var r = row[k];
        paintBlock(ctx, r.x0, AXIS_H + d * ROW_H, r.x1 - r.x0, r.v.frame, labelOf(r.v), dimmed(r.v));
      }
    }
    if (TL.n === 0) {
      ctx.fillStyle = palette.muted;
      ctx.fillText('No timeline in this session.', 12, AXIS_H + 30);
    }
    timelineRuns = runs;
    renderRange(t0, t1);
    drawHeap(width, t0, t1);
  }

  function drawAxis (ctx, width, t0, t1) {
    var step = niceStep(t1 - t0, Math.max(2, width / 110));
    ctx.fillStyle = palette.muted;
    ctx.strokeStyle = palette.border;
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(0, AXIS_H - 0.5);
    ctx.lineTo(width, AXIS_H - 0.5);
    ctx.stroke();
    for (var t = Math.ceil(t0 / step) * step; t <= t1; t += step) {
      var x = Math.round((t - t0) / (t1 - t0) * width) + 0.5;
      ctx.beginPath();
      ctx.moveTo(x, AXIS_H - 6);
      ctx.lineTo(x, AXIS_H);
      ctx.stroke();
      if (x < width - 40) ctx.fillText(fmtTick(t, step), x + 3, AXIS_H / 2 - 1);
    }
  }

  /* ------------------------------------------------------------- heap line */

  var HEAP_H = 72, HEAP_TOP = 16, HEAP_BOTTOM = 4;   /* the band, CSS px */
  var SVG_NS = 'http://www.w3.org/2000/svg';
  var heapShown = null;   /* {cols, t0, per} as last drawn */

  function svgEl (tag, cls, attrs) {
    var e = document.createElementNS(SVG_NS, tag);
    if (cls) e.setAttribute('class', cls);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }

  /* The first kept sample taken at or after t. */
  function firstFrom (t) {
    var a = 0, b = TL.n;
    while (a < b) {
      var mid = (a + b) >> 1;
      if (TL.times[mid] < t) a = mid + 1; else b = mid;
    }
    return a;
  }

  /* Per pixel column of [t0, t1]: the largest heap size sampled in it (so
     that no peak is lost), else that of the sample covering it; NaN where
     nothing was recorded. */
  function heapColumns (width, t0, t1) {
    var per = (t1 - t0) / width, cols = new Float64Array(width);
    var i = firstFrom(t0);
    for (var x = 0; x < width; x++) {
      var end = t0 + (x + 1) * per, best = -1;
      for (; i < TL.n && TL.times[i] < end; i++) if (TL.heap[i] > best) best = TL.heap[i];
      if (best < 0) {
        var k = sampleAt(t0 + (x + 0.5) * per);
        best = k >= 0 ? TL.heap[k] : NaN;
      }
      cols[x] = best;
    }
    return cols;
  }

  /* A round number of bytes at or above b, for the top of the band. */
  function roundUp (b) {
    var unit = 1;
    while (b >= 1024 * unit) unit *= 1024;
    var x = b / unit, p = Math.pow(10, Math.floor(Math.log10(x))), steps = [1, 1.5, 2, 3, 4, 5, 6, 8, 10];
    for (var i = 0; i < steps.length; i++) if (steps[i] * p >= x) return steps[i] * p * unit;
    return b;
  }

  /*
  ** The Lua heap's size over the timeline's span, under its stacks: an
  ** area scaled from 0 to a round number above the span's peak, which is
  ** marked with a dot and its size.
  */
  function drawHeap (width, t0, t1) {
    var wrap = $('heap-wrap'), box = $('heap');
    wrap.hidden = !TL.heap || TL.n === 0;
    heapShown = null;
    if (wrap.hidden) return;
    clear(box);
    box.setAttribute('width', width);
    box.setAttribute('height', HEAP_H);
    var cols = heapColumns(width, t0, t1), peak = -1;
    for (var x = 0; x < width; x++) if (cols[x] === cols[x] && (peak < 0 || cols[x] > cols[peak])) peak = x;
    if (peak < 0) return;
    var top = roundUp(Math.max(cols[peak], 1)), base = HEAP_H - HEAP_BOTTOM;
    var yOf = function (b) { return base - b / top * (base - HEAP_TOP); };
    /* one path per stretch of recorded columns, a step per column */
    var line = '', area = '', steps = [], start = 0;
    for (x = 0; x <= width; x++) {
      if (x < width && cols[x] === cols[x]) {
        if (steps.length === 0) start = x;
        steps.push(x + ' ' + yOf(cols[x]).toFixed(1) + 'H' + (x + 1));
      } else if (steps.length) {
        line += 'M' + steps.join('L');
        area += 'M' + start + ' ' + base + 'L' + steps.join('L') + 'V' + base + 'Z';
        steps = [];
      }
    }
    box.appendChild(svgEl('line', 'heap-grid', { x1: 0, x2: width, y1: HEAP_TOP - 0.5, y2: HEAP_TOP - 0.5 }));
    box.appendChild(svgEl('path', 'heap-area', { d: area }));
    box.appendChild(svgEl('path', 'heap-line', { d: line }));
    var scale = svgEl('text', 'heap-scale', { x: 6, y: HEAP_TOP - 8 });
    scale.textContent = 'heap ' + fmtBytes(top);
    box.appendChild(scale);
    var px = Math.min(Math.max(peak + 0.5, 4), width - 4), py = yOf(cols[peak]), right = px < width - 130;
    box.appendChild(svgEl('circle', 'heap-peak', { cx: px, cy: py, r: 3.5 }));
    var label = svgEl('text', 'heap-peak-label', { x: right ? px + 7 : px - 7, y: Math.max(py, 10),
                                                  'text-anchor': right ? 'start' : 'end' });
    label.textContent = 'peak ' + fmtBytes(cols[peak]);
    box.appendChild(label);
    box.appendChild(svgEl('line', 'heap-cursor', { x1: 0, x2: 0, y1: HEAP_TOP, y2: base, visibility: 'hidden' }));
    box.setAttribute('aria-label', 'Lua heap size over time; peak ' + fmtBytes(cols[peak]) +
                     ' at ' + fmtSeconds(t0 + peak * (t1 - t0) / width));
    heapShown = { cols: cols, t0: t0, per: (t1 - t0) / width };
  }

  function heapHover (e) {
    var cursor = $('heap').querySelector('.heap-cursor');
    var x = Math.floor(e.clientX - $('heap').getBoundingClientRect().left);
    if (!heapShown || !cursor || !(heapShown.cols[x] === heapShown.cols[x])) {
      if (cursor) cursor.setAttribute('visibility', 'hidden');
      hideTip();
      return;
    }
    cursor.setAttribute('x1', x + 0.5);
    cursor.setAttribute('x2', x + 0.5);
    cursor.setAttribute('visibility', 'visible');
    var tip = $('tooltip');
    clear(tip);
    tip.appendChild(el('div', 't-name', 'Lua heap'));
    [['size', fmtBytes(heapShown.cols[x])],
     ['at', fmtSeconds(heapShown.t0 + (x + 0.5) * heapShown.per)]].forEach(function (kv) {
      var r = el('div', 't-row');
      r.appendChild(el('span', null, kv[0]));
      r.appendChild(el('span', null, kv[1]));
      tip.appendChild(r);
    });
    placeTip(e);
  }

  function heapLeave () {
    var cursor = $('heap').querySelector('.heap-cursor');
    if (cursor) cursor.setAttribute('visibility', 'hidden');
    hideTip();
  }

  function renderRange (t0, t1) {
    var box = $('timeline-range');
    clear(box);
    box.appendChild(el('span', null, fmtSeconds(t0) + ' – ' + fmtSeconds(t1) +
                       '  (' + fmtSeconds(t1 - t0) + ')'));
    if (state.span) {
      var reset = el('button', 'reset', 'Reset zoom');
      reset.type = 'button';
      reset.addEventListener('click', function () { zoomTimeline(null); });
      box.appendChild(reset);
    }
  }

  function zoomTimeline (span) {
    if (span) {
      var min = TL.typical * 4;
      if (span[1] - span[0] < min) {
        var mid = (span[0] + span[1]) / 2;
        span = [mid - min / 2, mid + min / 2];
      }
    }
    state.span = span;
    drawTimeline();
  }

  function timelineHit (e) {
    var box = $('timeline').getBoundingClientRect();
    var x = e.clientX - box.left, y = e.clientY - box.top - AXIS_H;
    if (y < 0) return null;
    var row = timelineRuns[Math.floor(y / ROW_H)];
    if (!row) return null;
    for (var i = 0; i < row.length; i++)
      if (x >= row[i].x0 && x < row[i].x1) return row[i];
    return null;
  }

  function wireTimeline () {
    var canvas = $('timeline'), sel = $('timeline-select'), heap = $('heap'), drag = null;
    function xOf (e) { return e.clientX - canvas.getBoundingClientRect().left; }
    function spanAt (x) {
      var span = state.span || [0, Math.max(TL.end, 1)];
      return span[0] + x / canvas.clientWidth * (span[1] - span[0]);
    }
    function startDrag (e) {
      if (e.button !== 0) return;
      drag = { x: xOf(e) };
      e.preventDefault();
    }
    canvas.addEventListener('mousedown', startDrag);
    heap.addEventListener('mousedown', startDrag);
    heap.addEventListener('mousemove', function (e) { if (!drag) heapHover(e); });
    heap.addEventListener('mouseleave', heapLeave);
    window.addEventListener('mousemove', function (e) {
      if (!drag) return;
      var x = xOf(e), a = Math.min(drag.x, x), b = Math.max(drag.x, x);
      if (b - a < 4) { sel.hidden = true; return; }
      sel.hidden = false;
      sel.style.left = a + 'px';
      sel.style.width = (b - a) + 'px';
      hideTip();
    });
    window.addEventListener('mouseup', function (e) {
      if (!drag) return;
      var x = xOf(e), a = Math.min(drag.x, x), b = Math.max(drag.x, x);
      var span = state.span || [0, Math.max(TL.end, 1)], per = (span[1] - span[0]) / canvas.clientWidth;
      drag = null;
      sel.hidden = true;
      if (b - a >= 4) zoomTimeline([span[0] + a * per, span[0] + b * per]);
      else {
        var hit = timelineHit(e);
        if (hit) zoomTimeline([hit.t0, hit.t1]);
      }
    });
    canvas.addEventListener('mousemove', function (e) {
      if (drag) return;
      var hit = timelineHit(e);
      if (!hit) { hideTip(); return; }
      var extra = [['here', fmtSeconds(hit.t0) + ' – ' + fmtSeconds(hit.t1)]];
      var i = TL.heap ? sampleAt(spanAt(xOf(e))) : -1;
      if (i >= 0) extra.push(['heap', fmtBytes(TL.heap[i])]);
      showTip(e, hit.v, extra, timeView());
    });
    canvas.addEventListener('mouseleave', hideTip);
    canvas.addEventListener('wheel', function (e) {
      if (!(e.ctrlKey || e.metaKey) && Math.abs(e.deltaX) <= Math.abs(e.deltaY)) return;
      e.preventDefault();
      var span = state.span || [0, Math.max(TL.end, 1)], len = span[1] - span[0];
      var at = span[0] + xOf(e) / canvas.clientWidth * len;
      if (e.ctrlKey || e.metaKey) {
        var f = Math.exp(e.deltaY * 0.002);
        zoomTimeline(clampSpan([at - (at - span[0]) * f, at + (span[1] - at) * f]));
      } else {
        var dt = e.deltaX / canvas.clientWidth * len;
        zoomTimeline(clampSpan([span[0] + dt, span[1] + dt]));
      }
    }, { passive: false });
  }

  function clampSpan (s) {
    var end = Math.max(TL.end, 1), len = Math.min(s[1] - s[0], end);
    var a = Math.min(Math.max(s[0], 0), end - len);
    if (a <= 0 && len >= end) return null;
    return [a, a + len];
  }

  /* ------------------------------------------------------------------ views */

  /* The tabs, in order: a diff has its functions where the timeline was. */
  function viewOrder () {
    return diff ? ['tree', 'flame', 'functions'] : ['tree', 'flame', 'timeline'];
  }

  function setView (name) {
    state.view = name;
    ['tree', 'flame', 'timeline', 'functions'].forEach(function (v) {
      $('view-' + v).hidden = v !== name;
      $('tab-' + v).setAttribute('aria-selected', String(v === name));
      $('tab-' + v).tabIndex = v === name ? 0 : -1;
    });
    document.documentElement.dataset.view = name;
    hideTip();
    refresh();
  }

  /* Repaints the view on show, leaving hidden ones for when they show. */
  function refresh () {
    if (state.view === 'tree') renderTree();
    else if (state.view === 'flame') drawFlame();
    else if (state.view === 'functions') renderFunctions();
    else drawTimeline();
  }

  function setShowLibrary (on) {
    if (on === state.showLibrary) return;
    var paths = [];
    state.expanded.forEach(function (v) { paths.push(framePath(v)); });
    var zoomPath = state.flameZoom ? framePath(state.flameZoom) : null;
    state.showLibrary = on;
    $('show-library').checked = on;
    V = buildView(P, V.weight, on);
    TV = null;
    state.expanded = new Set();
    paths.forEach(function (p) { var v = findPath(p); if (v) state.expanded.add(v); });
    state.flameZoom = zoomPath ? findPath(zoomPath) : null;
    collectMatches();
    refresh();
  }

  /* ---------------------------------------------------------------- weights */

  /* The weights a user can choose, the default first. */
  function weightNames () {
    if (!P.memory) return ['time'];
    return P.weights.time.total > 0 ? ['alloc', 'live', 'time'] : ['alloc', 'live'];
  }

  /* The tree, flame graph and search weighed by another of P.weights: the
     tree opens on its hot path, keeping the search and the flame zoom. */
  function setWeight (name) {
    if (name === V.weight.name || !P.weights[name]) return;
    var zoomPath = state.flameZoom ? framePath(state.flameZoom) : null;
    V = buildView(P, P.weights[name], state.showLibrary);
    TV = null;
    state.expanded = new Set();
    openHotPath();
    state.flameZoom = zoomPath ? findPath(zoomPath) : null;
    renderWeights();
    if (diff) renderDiffHeader();   /* what is compared: bytes or time */
    if (state.query) runSearch($('search').value);
    else refresh();
  }

  function renderWeights () {
    var box = $('weights'), names = weightNames();
    box.hidden = names.length < 2;
    clear(box);
    if (box.hidden) return;
    names.forEach(function (name) {
      var W = P.weights[name], on = name === V.weight.name;
      var b = el('button', null, W.label);
      b.type = 'button';
      b.id = 'weight-' + name;
      b.setAttribute('role', 'radio');
      b.setAttribute('aria-checked', String(on));
      b.tabIndex = on ? 0 : -1;
      b.title = W.help + ': ' + W.fmt(W.total);
      b.sprofWeight = name;
      box.appendChild(b);
    });
    document.documentElement.dataset.weight = V.weight.name;
    box.title = 'What the call tree and flame graph weigh (the timeline is of time)';
  }

  function wireWeights () {
    var box = $('weights');
    box.addEventListener('click', function (e) {
      var name = e.target.sprofWeight;
      if (name) setWeight(name);
    });
    box.addEventListener('keydown', function (e) {
      var names = weightNames(), k = names.indexOf(V.weight.name);
      if (e.key === 'ArrowRight' || e.key === 'ArrowDown') k = (k + 1) % names.length;
      else if (e.key === 'ArrowLeft' || e.key === 'ArrowUp') k = (k + names.length - 1) % names.length;
      else return;
      setWeight(names[k]);
      $('weight-' + names[k]).focus();
      e.preventDefault();
    });
  }

  function framePath (v) {
    var path = [];
    for (; v && v.parent; v = v.parent) path.push(v.frame);
    return path.reverse();
  }

  /* The node reached by the frames of 'path', skipping frames now hidden. */
  function findPath (path) {
    var v = V.root;
    for (var i = 0; i < path.length; i++) {
      var next = null;
      for (var k = 0; k < v.children.length; k++)
        if (v.children[k].frame === path[i]) { next = v.children[k]; break; }
      if (next) v = next;
    }
    return v === V.root ? null : v;
  }

  function wire () {
    var tree = $('tree');
    tree.addEventListener('click', onTreeClick);
    tree.addEventListener('keydown', onTreeKey);

    var tabs = document.querySelectorAll('.tabs [role="tab"]');
    for (var i = 0; i < tabs.length; i++) {
      tabs[i].addEventListener('click', function (e) { setView(e.currentTarget.dataset.view); });
    }
    document.querySelector('.tabs').addEventListener('keydown', function (e) {
      var order = viewOrder(), k = order.indexOf(state.view);
      if (e.key === 'ArrowRight') k = (k + 1) % 3;
      else if (e.key === 'ArrowLeft') k = (k + 2) % 3;
      else return;
      setView(order[k]);
      $('tab-' + order[k]).focus();
      e.preventDefault();
    });

    var search = $('search'), timer = 0;
    search.addEventListener('input', function () {
      clearTimeout(timer);
      timer = setTimeout(function () { runSearch(search.value); }, 120);
    });
    search.addEventListener('keydown', function (e) {
      if (e.key === 'Enter') {
        clearTimeout(timer);
        if (search.value.trim().toLowerCase() !== state.query) runSearch(search.value);
        nextMatch(e.shiftKey);
        e.preventDefault();
      } else if (e.key === 'Escape') {
        search.value = '';
        runSearch('');
        search.blur();
      }
    });

    $('show-library').addEventListener('change', function (e) { setShowLibrary(e.target.checked); });
    wireWeights();

    var flame = $('flame');
    flame.addEventListener('click', function (e) {
      var v = flameHit(e);
      if (v) zoomFlame(v);
    });
    flame.addEventListener('mousemove', function (e) {
      var v = flameHit(e);
      if (v) showTip(e, v); else hideTip();
      flame.style.cursor = v ? 'pointer' : 'default';
    });
    flame.addEventListener('mouseleave', hideTip);
    wireTimeline();

    document.addEventListener('keydown', function (e) {
      var t = e.target, typing = t && (t.tagName === 'INPUT' || t.isContentEditable);
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      if (e.key === '/' && !typing) { search.focus(); search.select(); e.preventDefault(); }
      else if (!typing && (e.key === '1' || e.key === '2' || e.key === '3'))
        setView(viewOrder()[+e.key - 1]);
      else if (e.key === 'Escape' && !typing) {
        if (state.view === 'flame' && state.flameZoom) zoomFlame(state.flameZoom.parent);
        else if (state.view === 'timeline' && state.span) zoomTimeline(null);
      }
    });

    var pending = 0;
    function redrawSoon () {
      if (pending) return;
      pending = requestAnimationFrame(function () {
        pending = 0;
        if (state.view !== 'tree') refresh();
      });
    }
    window.addEventListener('resize', redrawSoon);
    if (window.matchMedia) {
      var mq = window.matchMedia('(prefers-color-scheme: dark)');
      var onTheme = function () { palette = themeColors(); redrawSoon(); };
      if (mq.addEventListener) mq.addEventListener('change', onTheme);
      else if (mq.addListener) mq.addListener(onTheme);
    }
  }

  /* -------------------------------------------------------------- diff mode */

  /*
  ** sprof-lua --diff puts two sessions in the page (data.before and
  ** data.after). One trie holds the stacks of both, by function: the same
  ** kind, name and file (and line, for anonymous functions and markers),
  ** as report/diff.c matches them, so code edited between the runs still
  ** lines up. Each view node has the after run's weights (total, self) and
  ** the before run's (before, bself), and its change: after share - before
  ** share, in points of each run ("share", the default), or after - before
  ** ("absolute"). Relative: after / before - 1 of the same numbers.
  */
  var diff = null;   /* {mode, beforeFile, afterFile, before, after} */

  /* how the tree and the functions table sort: key, and 1 largest first */
  state.sort = { key: 'change', dir: 1 };
  state.fsort = { key: 'change', dir: 1 };
  state.fshown = 500;   /* functions listed, until "show all" */

  function diffKey (f) {
    var key = f.kind + '\u0000' + f.name + '\u0000' + f.file, c = f.name.charAt(0);
    return c === '(' || c === '[' ? key + '\u0000' + f.line : key;
  }

  function loadDiff (raw) {
    var frames = [], index = new Map();
    function intern (session) {
      return (session.frames || []).map(function (g) {
        var f = frameFrom(g), key = diffKey(f), k = index.get(key);
        if (k === undefined) { k = frames.length; index.set(key, k); frames.push(f); }
        return k;
      });
    }
    var ofAfter = intern(raw.after), ofBefore = intern(raw.before);
    var sa = raw.after.stacks || [], sb = raw.before.stacks || [];
    var P = new Trie(frames, (sa.length + sb.length) * 4 + 16);
    function leaves (stacks, of) {
      var out = new Int32Array(stacks.length);
      for (var i = 0; i < stacks.length; i++) {
        var path = stacks[i].frames || [], cur = 0;
        for (var k = 0; k < path.length; k++) {
          var f = path[k];
          if (f >= 0 && f < of.length) cur = P.child(cur, of[f]);
        }
        out[i] = cur;
      }
      return out;
    }
    P.stackLeaf = leaves(sa, ofAfter);
    var beforeLeaf = leaves(sb, ofBefore);
    P.memory = +raw.after.memory_rate > 0 && +raw.before.memory_rate > 0;
    P.weights = {};
    (P.memory ? ['alloc', 'live', 'time'] : ['time']).forEach(function (name) {
      var W = weigh(P, sa, WEIGHTS[name]), B = weigh(P, sb, WEIGHTS[name], beforeLeaf);
      W.bself = B.self;
      W.btotal = B.total;
      P.weights[name] = W;
    });
    return P;
  }

  /* A weight of one run in the diff's unit: a share of that run, or itself. */
  function dval (x, after, view) {
    view = view || V;
    if (diff.mode === 'absolute') return x;
    var total = after ? view.total : view.btotal;
    return total > 0 ? x / total : 0;
  }

  function changeOf (v, view) {
    return dval(v.total, true, view) - dval(v.before, false, view);
  }

  /* after / before - 1; Infinity: new in the after run. */
  function relOf (before, after, view) {
    var b = dval(before, false, view), a = dval(after, true, view);
    return b > 0 ? a / b - 1 : a > 0 ? Infinity : 0;
  }

  /* A change worth a colour: half a point of the run (or the same part of
     the larger run); less is within what two runs of the same code differ
     by with a thousand samples. */
  function trend (c, view) {
    view = view || V;
    var least = diff.mode === 'absolute' ? 0.005 * Math.max(view.total, view.btotal) : 0.005;
    return c >= least && c > 0 ? 'up' : c <= -least && c < 0 ? 'down' : 'same';
  }

  function fmtDiffValue (x) {
    return diff.mode === 'absolute' ? fmtWeight(x) : fmtPercent(x);
  }

  function fmtChange (c) {
    if (diff.mode !== 'absolute') {
      var pt = c * 100;
      return Math.abs(pt) < 0.05 ? '0.0 pt' : (pt > 0 ? '+' : '-') + Math.abs(pt).toFixed(1) + ' pt';
    }
    var least = V.weight.name === 'time' ? 5e5 : 0.5;
    return Math.abs(c) < least ? '0' : (c > 0 ? '+' : '-') + fmtWeight(Math.abs(c));
  }

  function fmtRelative (r) {
    if (r === Infinity) return 'new';
    if (Math.abs(r) < 0.005) return '0%';
    return (r > 0 ? '+' : '-') + Math.abs(r * 100).toFixed(0) + '%';
  }

  /* What the tree sorts by: sortValue(node, key), largest first. */
  function sortValue (v, key, view) {
    if (key === 'before') return dval(v.before, false, view);
    if (key === 'after') return dval(v.total, true, view);
    if (key === 'relative') return relOf(v.before, v.total, view);
    return v.change;
  }

  /* Each node's change, and the children sorted by state.sort; those
     under MIN_SHARE of both runs last, where they wait behind "more". */
  function sortByChange (view) {
    var key = state.sort.key, dir = state.sort.dir, nodes = view.nodes, j;
    var min = MIN_SHARE * view.total, bmin = MIN_SHARE * view.btotal;
    for (j = 0; j < nodes.length; j++) {
      var n = nodes[j];
      n.change = changeOf(n, view);
      n.sortValue = sortValue(n, key, view);
      n.small = n.total < min && n.before < bmin;
    }
    function order (a, b) {
      if (a.small !== b.small) return a.small ? 1 : -1;
      if (a.sortValue !== b.sortValue) return (a.sortValue < b.sortValue ? 1 : -1) * dir;
      return b.total - a.total || b.before - a.before || a.frame - b.frame;
    }
    for (j = 0; j < nodes.length; j++)
      if (nodes[j].children.length > 1) nodes[j].children.sort(order);
  }

  /* The flame graph lays out the after run: children widest first. */
  function flameKids (v) {
    if (!diff) return v.children;
    if (!v.flameKids) v.flameKids = v.children.slice().sort(byTotal);
    return v.flameKids;
  }

  /*
  ** A block's fill in a diff: red where it got slower, blue where faster,
  ** grey where the change is under half a point; the colour is full
  ** at 10 points of the run (absolute: a tenth of the larger run).
  */
  function changeFill (c) {
    var d = palette.dark, t = trend(c);
    if (t === 'same') return d ? 'hsl(220 6% 34%)' : 'hsl(220 8% 82%)';
    var full = diff.mode === 'absolute' ? 0.1 * Math.max(V.total, V.btotal) : 0.1;
    var k = 0.3 + 0.7 * Math.sqrt(Math.min(1, Math.abs(c) / full));
    var hue = t === 'up' ? 4 : 212, sat = 45 + 40 * k;
    var light = d ? 24 + 20 * k : 86 - 30 * k;
    return 'hsl(' + hue + ' ' + sat.toFixed(0) + '% ' + light.toFixed(0) + '%)';
  }

  function diffCells (row, v) {
    /* the bar is full at 20 points of the run (absolute: a fifth of it) */
    var t = trend(v.change), full = 0.2 * (diff.mode === 'absolute' ? Math.max(V.total, V.btotal) : 1);
    row.appendChild(el('span', 'c-before', fmtDiffValue(dval(v.before, false))));
    row.appendChild(el('span', 'c-after', fmtDiffValue(dval(v.total, true))));
    var ch = el('span', 'c-change ' + t);
    var bar = el('span', 'change-bar'), fill = el('span', t);
    var w = full > 0 ? Math.min(100, Math.abs(v.change) / full * 100) : 0;
    fill.style.width = (t === 'same' ? 0 : Math.max(w, 2)).toFixed(1) + '%';
    bar.appendChild(fill);
    ch.appendChild(bar);
    ch.appendChild(el('span', 'num', fmtChange(v.change)));
    row.appendChild(ch);
    row.appendChild(el('span', 'c-rel ' + t, fmtRelative(relOf(v.before, v.total))));
  }

  function diffTip (v, view, line) {
    var fmt = view.weight.fmt;
    line('before', fmt(v.before) + '  ' + fmtPercent(view.btotal > 0 ? v.before / view.btotal : 0));
    line('after', fmt(v.total) + '  ' + fmtPercent(share(v, view)));
    line('change', fmtChange(v.change) + '  (' + fmtRelative(relOf(v.before, v.total, view)) + ')');
  }

  function renderDiffHeader () {
    var b = diff.before, a = diff.after;
    var title = diff.beforeFile + ' → ' + diff.afterFile;
    $('program').textContent = title;
    $('program').title = title;
    document.title = 'diff ' + title + ' — sprof';
    var program = a.program || b.program;
    $('recorded').textContent = (program ? str(program) + ' · ' : '') + 'before ' +
      (fmtDate(+b.start_time) || '?') + ', after ' + (fmtDate(+a.start_time) || '?');
    var facts = $('facts');
    clear(facts);
    [['Before', b, diff.beforeFile], ['After', a, diff.afterFile]].forEach(function (r) {
      var s = r[1], samples = +s.samples || 0;
      facts.appendChild(fact(r[0], fmtSeconds(+s.duration_ns || 0), fmtCount(samples) + ' samples',
                             r[2] + (s.program ? ' (' + str(s.program) + ')' : '') +
                             ', recorded ' + (fmtDate(+s.start_time) || '?')));
    });
    var what = V.weight.name === 'time' ? 'time' : 'bytes';
    facts.appendChild(fact('Compared', diff.mode === 'absolute' ? (what === 'time' ? 'seconds' : 'bytes')
                                                                 : 'shares of each run', null,
      diff.mode === 'absolute'
        ? 'Change: after - before; relative: after / before - 1 (of the ' + what + ')'
        : 'Change: after share - before share, in points of each run; relative: ' +
          'after share / before share - 1. sprof-lua --diff-absolute compares ' +
          (what === 'time' ? 'seconds' : 'bytes') + '.'));
  }

  /* The tree's column heads sort it: again for the other way round. */
  function renderDiffHead () {
    var head = document.querySelector('#view-tree .tree-head');
    clear(head);
    head.removeAttribute('aria-hidden');
    [['before', 'Before'], ['after', 'After'], ['change', 'Change'], ['relative', 'Relative']]
      .forEach(function (c) {
        var on = state.sort.key === c[0];
        var b = el('button', 'sort c-' + c[0] + (on ? ' on' : ''), c[1] + (on ? (state.sort.dir > 0 ? ' ▼' : ' ▲') : ''));
        b.type = 'button';
        b.title = 'Sort the tree by ' + c[1].toLowerCase() + (on ? ' (click again: the other way round)' : '');
        b.sprofSort = c[0];
        b.setAttribute('aria-pressed', String(on));
        head.appendChild(b);
      });
    var name = el('span', 'c-name', 'Function ');
    name.appendChild(el('span', 'hint', diff.mode === 'absolute'
      ? 'change: after - before' : 'change: points of each run'));
    head.appendChild(name);
  }

  function setSort (key) {
    state.sort = { key: key, dir: state.sort.key === key ? -state.sort.dir : 1 };
    sortByChange(V);
    renderDiffHead();
    refresh();
  }

  /* Each function once: its total (a recursive call counted once), its
     own weight, in both runs; cached on the view. */
  function diffFunctions () {
    if (V.functions) return V.functions;
    var by = new Map(), depth = new Int32Array(frames.length);
    function visit (v) {
      var f = null;
      if (v.frame >= 0) {
        f = by.get(v.frame);
        if (!f) {
          f = { frame: v.frame, before: 0, after: 0, bself: 0, aself: 0, heaviest: v };
          by.set(v.frame, f);
        }
        if (depth[v.frame]++ === 0) { f.before += v.before; f.after += v.total; }
        f.bself += v.bself;
        f.aself += v.self;
        if (Math.abs(v.change) > Math.abs(f.heaviest.change)) f.heaviest = v;
      }
      for (var i = 0; i < v.children.length; i++) visit(v.children[i]);
      if (f) depth[v.frame]--;
    }
    visit(V.root);
    V.functions = Array.from(by.values());
    V.functions.forEach(function (f) {
      f.change = dval(f.after, true) - dval(f.before, false);
      f.selfChange = dval(f.aself, true) - dval(f.bself, false);
      f.relative = relOf(f.before, f.after);
    });
    return V.functions;
  }

  var FCOLUMNS = [
    ['name', 'Function'], ['before', 'Before'], ['after', 'After'], ['change', 'Change'],
    ['relative', 'Relative'], ['bself', 'Self before'], ['aself', 'Self after'],
    ['selfChange', 'Self change']
  ];

  function fvalue (f, key) {
    if (key === 'name') return frames[f.frame].name.toLowerCase();
    if (key === 'before' || key === 'bself') return dval(f[key], false);
    if (key === 'after' || key === 'aself') return dval(f[key], true);
    return f[key];
  }

  /* The functions over MIN_SHARE of either run, sorted by state.fsort. */
  function sortedFunctions () {
    var key = state.fsort.key, dir = state.fsort.dir;
    var list = diffFunctions().filter(function (f) {
      return dval(f.before, false) >= MIN_SHARE * dval(V.btotal, false) ||
             dval(f.after, true) >= MIN_SHARE * dval(V.total, true);
    });
    list.forEach(function (f) { f.sortValue = fvalue(f, key); });
    list.sort(function (a, b) {
      if (a.sortValue !== b.sortValue)
        return (a.sortValue < b.sortValue ? 1 : -1) * (key === 'name' ? -dir : dir);
      return b.after - a.after || a.frame - b.frame;
    });
    return list;
  }

  function renderFunctions () {
    var table = $('functions'), list = sortedFunctions();
    clear(table);
    var head = el('thead'), tr = el('tr');
    FCOLUMNS.forEach(function (c) {
      var on = state.fsort.key === c[0], th = el('th', c[0] === 'name' ? 'fn-col' : null);
      /* names sort A to Z first, numbers largest first */
      var down = (state.fsort.dir > 0) !== (c[0] === 'name');
      th.setAttribute('aria-sort', on ? (down ? 'descending' : 'ascending') : 'none');
      var b = el('button', 'sort' + (on ? ' on' : ''), c[1] + (on ? (state.fsort.dir > 0 ? ' ▼' : ' ▲') : ''));
      b.type = 'button';
      b.sprofSort = c[0];
      th.appendChild(b);
      tr.appendChild(th);
    });
    head.appendChild(tr);
    table.appendChild(head);
    var body = el('tbody');
    for (var i = 0; i < list.length && i < state.fshown; i++) body.appendChild(functionRow(list[i]));
    if (list.length > state.fshown) {
      var more = el('tr', 'more'), td = el('td', null);
      td.colSpan = FCOLUMNS.length;
      var b = el('button', 'show-all', 'Show all ' + fmtCount(list.length) + ' functions');
      b.type = 'button';
      b.sprofShowAll = true;
      td.appendChild(b);
      more.appendChild(td);
      body.appendChild(more);
    }
    if (list.length === 0) {
      var none = el('tr'), cell = el('td', 'empty', 'No function has samples in either run.');
      cell.colSpan = FCOLUMNS.length;
      none.appendChild(cell);
      body.appendChild(none);
    }
    table.appendChild(body);
  }

  function functionRow (fn) {
    var f = frames[fn.frame], row = el('tr', kindClass(f));
    if (state.matchFrame && state.matchFrame[fn.frame]) row.classList.add('match');
    var name = el('td', 'fn-col'), n = el('span', 'fn');
    putMatched(n, f.name);
    name.appendChild(n);
    var loc = where(f);
    if (loc) {
      var w = el('span', 'where');
      putMatched(w, loc);
      name.appendChild(w);
    }
    name.title = 'Show it in the call tree, where it changed most';
    row.appendChild(name);
    row.appendChild(el('td', null, fmtDiffValue(dval(fn.before, false))));
    row.appendChild(el('td', null, fmtDiffValue(dval(fn.after, true))));
    row.appendChild(el('td', 'chg ' + trend(fn.change), fmtChange(fn.change)));
    row.appendChild(el('td', 'chg ' + trend(fn.change), fmtRelative(fn.relative)));
    row.appendChild(el('td', 'self', fmtDiffValue(dval(fn.bself, false))));
    row.appendChild(el('td', 'self', fmtDiffValue(dval(fn.aself, true))));
    row.appendChild(el('td', 'chg ' + trend(fn.selfChange), fmtChange(fn.selfChange)));
    row.sprofFunction = fn;
    return row;
  }

  /* A click on a function: the tree, open at its node that changed most. */
  function showInTree (fn) {
    var row = openInTree(fn.heaviest);
    if (row) focusRow(row);
  }

  function onFunctionsClick (e) {
    var t = e.target;
    if (t.sprofShowAll) {
      state.fshown = Infinity;
      renderFunctions();
      return;
    }
    var b = t.closest ? t.closest('button') : null;
    if (b && b.sprofSort) {
      var key = b.sprofSort;
      state.fsort = { key: key, dir: state.fsort.key === key ? -state.fsort.dir : 1 };
      renderFunctions();
      return;
    }
    var row = t.closest ? t.closest('tr') : null;
    if (row && row.sprofFunction) showInTree(row.sprofFunction);
  }

  function renderDiffLegend () {
    var legend = $('legend');
    clear(legend);
    legend.classList.add('diff-legend');
    [['up', 'slower (a larger share)'], ['same', 'unchanged (within 0.5 pt)'], ['down', 'faster (a smaller share)']]
      .forEach(function (k) {
        legend.appendChild(el('span', 'key k-' + k[0], diff.mode === 'absolute'
          ? k[1].replace(/ \(.*\)/, '') : k[1]));
      });
    legend.appendChild(el('span', 'legend-note',
      'Flame graph: widths are the after run, colours the change (full at ' +
      (diff.mode === 'absolute' ? 'a tenth of the run' : '10 points') +
      '); code only in the before run shows in the tree and the functions'));
  }

  function setupDiff () {
    var root = document.documentElement;
    root.dataset.diff = diff.mode;
    $('tab-timeline').hidden = true;
    $('tab-functions').hidden = false;
    renderDiffHead();
    renderDiffLegend();
    document.querySelector('#view-tree .tree-head').addEventListener('click', function (e) {
      var b = e.target.closest ? e.target.closest('button') : null;
      if (b && b.sprofSort) setSort(b.sprofSort);
    });
    $('functions').addEventListener('click', onFunctionsClick);
  }

  /* ------------------------------------------------------------------- main */

  function fail (message) {
    var tree = $('tree');
    clear(tree);
    tree.appendChild(el('div', 'empty', message));
  }

  function main () {
    try {
      data = JSON.parse($('sprof-data').textContent);
    } catch (err) {
      fail('This report holds no readable profile data (' + err.message + ').');
      return;
    }
    if (data && data.format === 'sprof-diff' && data.before && data.after) {
      diff = { mode: data.mode === 'absolute' ? 'absolute' : 'share',
               beforeFile: str(data.before_file), afterFile: str(data.after_file),
               before: data.before, after: data.after };
      P = loadDiff(data);
      data = data.after;   /* what the page says of one run is of this one */
    } else if (!data || data.format !== 'sprof-session') {
      fail('This report holds no sprof session.');
      return;
    } else {
      P = loadProfile(data);
    }
    frames = P.frames;
    state.showLibrary = options.showAll;
    $('show-library').checked = state.showLibrary;
    var names = weightNames();
    V = buildView(P, P.weights[names.indexOf(options.memoryView) >= 0 ? options.memoryView : names[0]],
                  state.showLibrary);
    TL = prepareTimeline();
    palette = themeColors();
    renderHeader();
    renderWeights();
    timelineNote();
    openHotPath();
    wire();
    if (diff) setupDiff();
    setView('tree');
    document.documentElement.dataset.ready = 'true';
    if (window.performance && performance.mark) performance.mark('sprof-ready');
  }

  main();
})();
