/*
 * sightline.js: helpers shared by the Sightline pages (served at /ui/assets/sightline.js).
 *
 * Everything is exposed under window.Sightline:
 *   - sign-in: tokens in localStorage (sightline.token, sightline.refresh, sightline.user),
 *     a sign-in form built into the page (#login-form, #login-username, #login-password,
 *     #login-submit, #login-error, as on /ui/active-nbas), sign-out, and
 *     Sightline.start(onReady) which calls onReady once the user is signed in;
 *   - api(method, path, body): JSON calls with the bearer token; a 401 exchanges the refresh
 *     token once (POST /api/v1/auth/refresh), then asks the user to sign in again. Errors
 *     reject with an Error whose message is the API's error.message (plus .status, .code,
 *     .details, .requestId);
 *   - download(path, filename): an authenticated download through a Blob;
 *   - el(tag, props, children): a DOM builder that only ever sets text (never innerHTML);
 *   - setCard(id, text, raw, note): fills a KPI card, raw in its data-value; query(params): a
 *     query string without the empty parameters;
 *   - fmt: number, money, compact, percent, change, bytes, duration, date/time formatting;
 *   - charts.line / charts.bars: small dependency-free SVG charts. The container passed in is
 *     the chart root: it gets data-total (sum of the values, 2 decimals), data-count and
 *     data-max; every point/bar is a <g> with data-label and data-value and a hover <title>.
 *
 * No framework, nothing fetched from the internet. The page's own script supplies the
 * markup: a <main id="main" hidden> for the signed-in view, and optionally #whoami and
 * #signout in its header.
 */
(function () {
  'use strict';

  var TOKEN = 'sightline.token';
  var REFRESH = 'sightline.refresh';
  var USER = 'sightline.user';

  // ---------------------------------------------------------------- token storage

  function stored(name) {
    try { return window.localStorage.getItem(name); } catch (e) { return null; }
  }

  function store(name, value) {
    try {
      if (value) { window.localStorage.setItem(name, value); } else { window.localStorage.removeItem(name); }
    } catch (e) { /* storage unavailable: the session lasts this page */ }
  }

  // Keeps the tokens of a login or refresh answer.
  function keepTokens(data) {
    store(TOKEN, data.access_token);
    store(REFRESH, data.refresh_token);
    store(USER, data.user ? data.user.username : '');
  }

  function forgetTokens() {
    [TOKEN, REFRESH, USER].forEach(function (n) { store(n, null); });
  }

  function token() { return stored(TOKEN); }

  function authHeaders() {
    var headers = {};
    var t = token();
    if (t) { headers['Authorization'] = 'Bearer ' + t; }
    return headers;
  }

  // One refresh at a time: concurrent 401s share the same exchange (a refresh token is
  // single-use, so two parallel exchanges would sign the user out).
  var refreshing = null;

  // Exchanges the refresh token for new tokens; resolves false when that is not possible.
  function refreshTokens() {
    if (refreshing) { return refreshing; }
    var refresh = stored(REFRESH);
    if (!refresh) { return Promise.resolve(false); }
    refreshing = fetch('/api/v1/auth/refresh', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Accept': 'application/json' },
      body: JSON.stringify({ refresh_token: refresh })
    }).then(function (res) {
      if (!res.ok) { return false; }
      return res.json().then(function (data) { keepTokens(data); return true; });
    }).catch(function () {
      return false;
    }).then(function (ok) {
      refreshing = null;
      return ok;
    });
    return refreshing;
  }

  // ---------------------------------------------------------------- errors

  // The Error for a failed answer: the API's message, code, details and request id.
  function apiError(status, statusText, data) {
    var body = data && data.error ? data.error : null;
    var err = new Error((body && body.message) || ('HTTP ' + status + (statusText ? ' ' + statusText : '')));
    err.status = status;
    err.code = body ? body.code : undefined;
    err.details = body && Array.isArray(body.details) ? body.details : [];
    err.requestId = body ? body.request_id : undefined;
    return err;
  }

  // Parses a response text as JSON, null when it is not.
  function parseJson(text) {
    if (!text) { return null; }
    try { return JSON.parse(text); } catch (e) { return null; }
  }

  // The error raised when the session has ended (the sign-in form is showing).
  function signedOutError() {
    var gone = new Error('signed out');
    gone.status = 401;
    gone.signedOut = true;
    return gone;
  }

  // Called when a 401 cannot be cured by a refresh.
  function sessionEnded() {
    forgetTokens();
    showLogin('Your session has ended; please sign in again.');
    return signedOutError();
  }

  // ---------------------------------------------------------------- API calls

  // A JSON call. Resolves with the parsed answer (null for an empty one) on 2xx; rejects with
  // apiError otherwise. A 401 refreshes the tokens once, then shows the sign-in form.
  function api(method, path, body, retried) {
    var headers = authHeaders();
    headers['Accept'] = 'application/json';
    var init = { method: method, headers: headers, cache: 'no-store' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    return fetch(path, init).then(function (res) {
      return res.text().then(function (text) {
        var data = parseJson(text);
        if (res.ok) { return data; }
        if (res.status === 401 && !retried) {
          return refreshTokens().then(function (ok) {
            if (ok) { return api(method, path, body, true); }
            throw sessionEnded();
          });
        }
        if (res.status === 401) { throw sessionEnded(); }
        throw apiError(res.status, res.statusText, data);
      });
    });
  }

  // Fetches `path` with the bearer token and saves it as `filename` through a Blob URL.
  function download(path, filename, retried) {
    return fetch(path, { headers: authHeaders(), cache: 'no-store' }).then(function (res) {
      if (res.status === 401 && !retried) {
        return refreshTokens().then(function (ok) {
          if (ok) { return download(path, filename, true); }
          throw sessionEnded();
        });
      }
      if (!res.ok) {
        return res.text().then(function (text) { throw apiError(res.status, res.statusText, parseJson(text)); });
      }
      return res.blob().then(function (blob) {
        var url = URL.createObjectURL(blob);
        var a = document.createElement('a');
        a.href = url;
        a.download = filename;
        a.hidden = true;
        document.body.appendChild(a);
        a.click();
        a.remove();
        setTimeout(function () { URL.revokeObjectURL(url); }, 10000);
        return blob;
      });
    });
  }

  // ---------------------------------------------------------------- DOM helper

  // el('td', {className: 'num', text: '12', dataset: {value: 12}, attrs: {title: 'x'},
  //   on: {click: fn}}, [children]). Strings among children become text nodes.
  function el(tag, props, children) {
    var node = document.createElement(tag);
    props = props || {};
    Object.keys(props).forEach(function (key) {
      var value = props[key];
      if (value === undefined || value === null) { return; }
      if (key === 'text') {
        node.textContent = String(value);
      } else if (key === 'className') {
        node.className = value;
      } else if (key === 'dataset') {
        Object.keys(value).forEach(function (k) {
          if (value[k] !== undefined && value[k] !== null) { node.dataset[k] = String(value[k]); }
        });
      } else if (key === 'attrs') {
        Object.keys(value).forEach(function (k) {
          if (value[k] !== undefined && value[k] !== null && value[k] !== false) { node.setAttribute(k, String(value[k])); }
        });
      } else if (key === 'on') {
        Object.keys(value).forEach(function (k) { node.addEventListener(k, value[k]); });
      } else {
        node[key] = value;
      }
    });
    append(node, children);
    return node;
  }

  function append(node, children) {
    if (children === undefined || children === null) { return node; }
    (Array.isArray(children) ? children : [children]).forEach(function (child) {
      if (child === undefined || child === null || child === false) { return; }
      node.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)));
    });
    return node;
  }

  // Fills a KPI card (.card-value, .card-note) of id `id`; `raw` goes to data-value (removed
  // when null or undefined), which the pages' tests read.
  function setCard(id, text, raw, note) {
    var card = document.getElementById(id);
    card.querySelector('.card-value').textContent = text;
    if (raw === null || raw === undefined) { delete card.dataset.value; } else { card.dataset.value = String(raw); }
    card.querySelector('.card-note').textContent = note || '';
  }

  // A query string of `params`, leaving out those undefined, null or empty.
  function query(params) {
    var u = new URLSearchParams();
    Object.keys(params).forEach(function (k) {
      var v = params[k];
      if (v !== undefined && v !== null && v !== '') { u.set(k, String(v)); }
    });
    return u.toString();
  }

  // Sets a status line: kind is '', 'info', 'ok' or 'error'.
  function setStatus(node, kind, text) {
    if (!node) { return; }
    node.className = 'status' + (kind ? ' ' + kind : '');
    node.textContent = text || '';
  }

  // ---------------------------------------------------------------- formatting

  var LOCALE;  // the browser's

  function isNum(n) { return typeof n === 'number' && isFinite(n); }

  var fmt = {
    // 12,345 (or with `digits` fraction digits).
    number: function (n, digits) {
      if (!isNum(n)) { return '—'; }
      var d = digits || 0;
      return n.toLocaleString(LOCALE, { minimumFractionDigits: d, maximumFractionDigits: d });
    },
    // 12,345.67: spends, always two decimals.
    money: function (n) {
      if (!isNum(n)) { return '—'; }
      return (n === 0 ? 0 : n).toLocaleString(LOCALE, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
    },
    // 1.2k, 3.4M: axis ticks.
    compact: function (n) {
      if (!isNum(n)) { return '—'; }
      var abs = Math.abs(n);
      var units = [[1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'k']];
      for (var i = 0; i < units.length; i++) {
        if (abs >= units[i][0]) {
          var v = n / units[i][0];
          return trimZeros(v.toFixed(Math.abs(v) < 10 ? 1 : 0)) + units[i][1];
        }
      }
      return trimZeros(n.toFixed(abs < 10 && abs !== Math.round(abs) ? 2 : 0));
    },
    // A fraction 0..1 as a percentage: 0.1134 → "11.3%".
    percent: function (fraction, digits) {
      if (!isNum(fraction)) { return '—'; }
      return (fraction * 100).toLocaleString(LOCALE, {
        minimumFractionDigits: digits === undefined ? 0 : digits,
        maximumFractionDigits: digits === undefined ? 1 : digits
      }) + '%';
    },
    // A change already in percent: 12.3 → "+12.3%", null → "—".
    change: function (pct) {
      if (!isNum(pct)) { return '—'; }
      var sign = pct > 0 ? '+' : (pct < 0 ? '−' : '±');
      return sign + Math.abs(pct).toLocaleString(LOCALE, { maximumFractionDigits: 1 }) + '%';
    },
    // 3486852 → "3.3 MB".
    bytes: function (n) {
      if (!isNum(n)) { return '—'; }
      var units = ['B', 'KB', 'MB', 'GB', 'TB'];
      var i = 0;
      var v = n;
      while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
      return (i === 0 ? String(v) : v.toFixed(v < 10 ? 1 : 0)) + ' ' + units[i];
    },
    // Seconds → "0.8 s", "42 s", "3 min 4 s", "2 h 5 min".
    duration: function (seconds) {
      if (!isNum(seconds)) { return '—'; }
      if (seconds < 10) { return trimZeros(seconds.toFixed(1)) + ' s'; }
      if (seconds < 60) { return Math.round(seconds) + ' s'; }
      var s = Math.round(seconds);
      if (s < 3600) { return Math.floor(s / 60) + ' min ' + (s % 60) + ' s'; }
      return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
    },
    // RFC 3339 → the browser's local date and time.
    dateTime: function (iso) {
      if (!iso) { return '—'; }
      var d = new Date(iso);
      return isNaN(d.getTime()) ? String(iso) : d.toLocaleString(LOCALE);
    },
    // RFC 3339 → "5 s ago", "3 min ago", "in 2 min".
    ago: function (iso) {
      if (!iso) { return '—'; }
      var t = new Date(iso).getTime();
      if (isNaN(t)) { return String(iso); }
      var secs = Math.round((Date.now() - t) / 1000);
      var future = secs < 0;
      var a = Math.abs(secs);
      var text = a < 60 ? a + ' s' : a < 3600 ? Math.floor(a / 60) + ' min' : a < 86400 ? Math.floor(a / 3600) + ' h' : Math.floor(a / 86400) + ' d';
      return future ? 'in ' + text : text + ' ago';
    },
    // "2025-01-05" → "Jan 5" (or "Jan 5, 2025" with `withYear`). Read as a calendar day.
    day: function (ymd, withYear) {
      var d = parseDay(ymd);
      if (!d) { return String(ymd); }
      var opts = { month: 'short', day: 'numeric', timeZone: 'UTC' };
      if (withYear) { opts.year = 'numeric'; }
      return d.toLocaleDateString(LOCALE, opts);
    }
  };

  function trimZeros(s) {
    return s.indexOf('.') >= 0 ? s.replace(/\.?0+$/, '') : s;
  }

  // "YYYY-MM-DD" → a Date at UTC midnight, null when malformed.
  function parseDay(ymd) {
    var m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(String(ymd || ''));
    if (!m) { return null; }
    var d = new Date(Date.UTC(+m[1], +m[2] - 1, +m[3]));
    return isNaN(d.getTime()) ? null : d;
  }

  // Date → "YYYY-MM-DD" (UTC).
  function isoDay(d) {
    return d.toISOString().slice(0, 10);
  }

  // "YYYY-MM-DD" plus n days.
  function addDays(ymd, n) {
    var d = parseDay(ymd);
    if (!d) { return ymd; }
    d.setUTCDate(d.getUTCDate() + n);
    return isoDay(d);
  }

  // Days from a to b ("YYYY-MM-DD").
  function daysBetween(a, b) {
    var da = parseDay(a);
    var db = parseDay(b);
    if (!da || !db) { return NaN; }
    return Math.round((db - da) / 86400000);
  }

  function round2(n) {
    return Math.round(n * 100) / 100;
  }

  // ---------------------------------------------------------------- SVG charts

  var SVG_NS = 'http://www.w3.org/2000/svg';

  function svg(tag, attrs, text) {
    var node = document.createElementNS(SVG_NS, tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (attrs[k] !== undefined && attrs[k] !== null) { node.setAttribute(k, String(attrs[k])); }
    });
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  // A "nice" number near x (1, 2, 5 × 10^n), rounded or ceiled.
  function niceNum(x, round) {
    if (x <= 0) { return 1; }
    var exp = Math.floor(Math.log10(x));
    var f = x / Math.pow(10, exp);
    var nf;
    if (round) { nf = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10; } else { nf = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10; }
    return nf * Math.pow(10, exp);
  }

  // Ticks from 0 (or below, for negative values) to a nice maximum.
  function ticksFor(min, max, count) {
    var lo = Math.min(0, min);
    var hi = Math.max(0, max);
    if (hi === lo) { hi = lo + 1; }
    var step = niceNum(niceNum(hi - lo, false) / Math.max(1, count - 1), true);
    var start = Math.floor(lo / step) * step;
    var end = Math.ceil(hi / step) * step;
    var ticks = [];
    for (var v = start; v <= end + step / 2; v += step) { ticks.push(Math.abs(v) < step / 1e6 ? 0 : v); }
    return { min: start, max: end, ticks: ticks };
  }

  // Marks the chart root with the figures tests and tools read.
  function markRoot(container, values) {
    var total = 0;
    var max = 0;
    values.forEach(function (v) { total += v; if (v > max) { max = v; } });
    container.setAttribute('data-total', round2(total).toFixed(2));
    container.setAttribute('data-count', String(values.length));
    container.setAttribute('data-max', String(max));
    container.classList.add('chart');
  }

  function emptyChart(container, message) {
    container.replaceChildren(el('p', { className: 'chart-empty', text: message || 'No data for this selection.' }));
  }

  function truncate(text, max) {
    text = String(text);
    return text.length > max ? text.slice(0, max - 1) + '…' : text;
  }

  // Charts are drawn at their container's width (1 SVG unit = 1 px, so text keeps its size)
  // and drawn again when the window is resized.
  var drawn = [];

  function chartWidth(container, opts) {
    var w = Math.floor(container.clientWidth || 0);
    container.dataset.width = String(w);
    return opts.width || (w >= 240 ? w : 760);
  }

  function remember(container, draw, data, opts) {
    for (var i = 0; i < drawn.length; i++) {
      if (drawn[i].container === container) { drawn.splice(i, 1); break; }
    }
    drawn.push({ container: container, draw: draw, data: data, opts: opts });
  }

  var resizeTimer = null;
  window.addEventListener('resize', function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () {
      drawn = drawn.filter(function (c) { return document.body.contains(c.container); });
      drawn.slice().forEach(function (c) {
        if (String(Math.floor(c.container.clientWidth || 0)) !== c.container.dataset.width) { c.draw(c.container, c.data, c.opts); }
      });
    }, 150);
  });

  // A line/area chart of a time series.
  //   points: array of objects; opts.x names the label key (a day), opts.y the value key.
  //   opts: { x, y, title(point) → hover text, format(value) → text, xFormat(label) → text,
  //           xLabel, yLabel, ariaLabel, empty, width, height,
  //           lower, upper: keys of an interval drawn as a band (.band) where both are given,
  //           series: key naming each point's series; points of a series other than the first
  //           are drawn dashed (.line.forecast) from the last point before them, and each point
  //           carries data-series }
  function lineChart(container, points, opts) {
    opts = opts || {};
    var xKey = opts.x || 'date';
    var yKey = opts.y || 'value';
    var format = opts.format || fmt.number;
    var xFormat = opts.xFormat || function (v) { return fmt.day(v); };
    var values = (points || []).map(function (p) { return Number(p[yKey]) || 0; });
    remember(container, lineChart, points, opts);
    markRoot(container, values);
    if (!values.length) { emptyChart(container, opts.empty); return; }

    var W = chartWidth(container, opts);
    var H = opts.height || 280;
    var m = { top: 14, right: 18, bottom: 44, left: 68 };
    var pw = W - m.left - m.right;
    var ph = H - m.top - m.bottom;
    var n = values.length;
    var bounded = [];
    if (opts.lower && opts.upper) {
      points.forEach(function (p, i) {
        if (isNum(p[opts.lower]) && isNum(p[opts.upper])) { bounded.push(i); }
      });
    }
    var extent = values.slice();
    bounded.forEach(function (i) { extent.push(points[i][opts.lower], points[i][opts.upper]); });
    var scale = ticksFor(Math.min.apply(null, extent), Math.max.apply(null, extent), 5);
    var xAt = function (i) { return m.left + (n === 1 ? pw / 2 : (i * pw) / (n - 1)); };
    var yAt = function (v) { return m.top + ph - ((v - scale.min) / (scale.max - scale.min)) * ph; };

    var root = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, width: W, height: H, role: 'img', 'aria-label': opts.ariaLabel || opts.yLabel || 'chart', class: 'chart-svg' });

    // Grid and y axis.
    var grid = svg('g', { class: 'grid' });
    scale.ticks.forEach(function (t) {
      var y = yAt(t);
      grid.appendChild(svg('line', { x1: m.left, x2: m.left + pw, y1: y, y2: y, class: t === 0 ? 'axis-line' : 'grid-line' }));
      grid.appendChild(svg('text', { x: m.left - 8, y: y + 4, 'text-anchor': 'end', class: 'tick' }, fmt.compact(t)));
    });
    root.appendChild(grid);

    // X labels: about six, evenly spaced, always the first and the last.
    var labels = svg('g', { class: 'x-labels' });
    var want = Math.min(n, 7);
    var seen = {};
    for (var k = 0; k < want; k++) {
      var idx = want === 1 ? 0 : Math.round((k * (n - 1)) / (want - 1));
      if (seen[idx]) { continue; }
      seen[idx] = true;
      var anchor = n === 1 ? 'middle' : idx === 0 ? 'start' : idx === n - 1 ? 'end' : 'middle';
      labels.appendChild(svg('line', { x1: xAt(idx), x2: xAt(idx), y1: m.top + ph, y2: m.top + ph + 4, class: 'axis-line' }));
      labels.appendChild(svg('text', { x: xAt(idx), y: m.top + ph + 18, 'text-anchor': anchor, class: 'tick' }, xFormat(points[idx][xKey])));
    }
    root.appendChild(labels);

    // Axis titles.
    if (opts.yLabel) {
      root.appendChild(svg('text', { x: 14, y: m.top + ph / 2, 'text-anchor': 'middle', class: 'axis-title',
        transform: 'rotate(-90 14 ' + (m.top + ph / 2) + ')' }, opts.yLabel));
    }
    if (opts.xLabel) {
      root.appendChild(svg('text', { x: m.left + pw / 2, y: H - 6, 'text-anchor': 'middle', class: 'axis-title' }, opts.xLabel));
    }

    // The interval band, then the area and line (or a solid and a dashed line by series).
    var at = function (i, v) { return xAt(i).toFixed(1) + ' ' + yAt(v).toFixed(1); };
    if (bounded.length) {
      var upper = bounded.map(function (i, k) { return (k ? 'L' : 'M') + at(i, points[i][opts.upper]); });
      var lower = bounded.slice().reverse().map(function (i) { return 'L' + at(i, points[i][opts.lower]); });
      root.appendChild(svg('path', { d: upper.concat(lower).join(' ') + ' Z', class: 'band' }));
    }
    var pathOf = function (indices) {
      return indices.map(function (i, k) { return (k ? 'L' : 'M') + at(i, values[i]); }).join(' ');
    };
    var all = values.map(function (v, i) { return i; });
    var first = opts.series ? points[0][opts.series] : null;
    var split = opts.series ? all.filter(function (i) { return points[i][opts.series] !== first; })[0] : undefined;
    if (split === undefined) {
      var line = pathOf(all);
      var base = yAt(Math.max(scale.min, 0)).toFixed(1);
      var area = line + ' L' + xAt(n - 1).toFixed(1) + ' ' + base + ' L' + xAt(0).toFixed(1) + ' ' + base + ' Z';
      if (!bounded.length) { root.appendChild(svg('path', { d: area, class: 'area' })); }
      root.appendChild(svg('path', { d: line, class: 'line' }));
    } else {
      root.appendChild(svg('path', { d: pathOf(all.slice(0, split)), class: 'line' }));
      root.appendChild(svg('path', { d: pathOf(all.slice(Math.max(0, split - 1))), class: 'line forecast' }));
    }

    // Points with hover targets (a full-height column per point) and titles.
    var band = n === 1 ? pw : pw / (n - 1);
    var pts = svg('g', { class: 'points' });
    values.forEach(function (v, i) {
      var p = points[i];
      var g = svg('g', { class: 'point', 'data-label': p[xKey], 'data-value': v });
      if (opts.series) { g.setAttribute('data-series', p[opts.series]); }
      g.appendChild(svg('title', {}, opts.title ? opts.title(p) : xFormat(p[xKey]) + ': ' + format(v)));
      g.appendChild(svg('rect', { x: (xAt(i) - band / 2).toFixed(1), y: m.top, width: band.toFixed(2), height: ph, class: 'hover' }));
      g.appendChild(svg('circle', { cx: xAt(i).toFixed(1), cy: yAt(v).toFixed(1), r: n > 120 ? 1.6 : 3 }));
      pts.appendChild(g);
    });
    root.appendChild(pts);

    container.replaceChildren(root);
  }

  // A horizontal bar chart of a ranked list.
  //   items: array of objects; opts.label names the label key, opts.value the value key.
  //   opts: { label, value, title(item) → hover text, format(value) → text, xLabel,
  //           ariaLabel, empty, width }
  function barChart(container, items, opts) {
    opts = opts || {};
    var labelKey = opts.label || 'label';
    var valueKey = opts.value || 'value';
    var format = opts.format || fmt.number;
    var values = (items || []).map(function (it) { return Number(it[valueKey]) || 0; });
    remember(container, barChart, items, opts);
    markRoot(container, values);
    if (!values.length) { emptyChart(container, opts.empty); return; }

    var W = chartWidth(container, opts);
    var rowH = 26;
    var m = { top: 8, right: 86, bottom: opts.xLabel ? 46 : 28, left: 170 };
    var pw = W - m.left - m.right;
    var ph = values.length * rowH;
    var H = m.top + ph + m.bottom;
    var scale = ticksFor(Math.min.apply(null, values), Math.max.apply(null, values), 5);
    var xAt = function (v) { return m.left + ((v - scale.min) / (scale.max - scale.min)) * pw; };

    var root = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, width: W, height: H, role: 'img', 'aria-label': opts.ariaLabel || opts.xLabel || 'chart', class: 'chart-svg' });

    var grid = svg('g', { class: 'grid' });
    scale.ticks.forEach(function (t) {
      var x = xAt(t);
      grid.appendChild(svg('line', { x1: x, x2: x, y1: m.top, y2: m.top + ph, class: t === 0 ? 'axis-line' : 'grid-line' }));
      grid.appendChild(svg('text', { x: x, y: m.top + ph + 16, 'text-anchor': 'middle', class: 'tick' }, fmt.compact(t)));
    });
    root.appendChild(grid);
    if (opts.xLabel) {
      root.appendChild(svg('text', { x: m.left + pw / 2, y: H - 6, 'text-anchor': 'middle', class: 'axis-title' }, opts.xLabel));
    }

    var bars = svg('g', { class: 'bars' });
    values.forEach(function (v, i) {
      var it = items[i];
      var label = String(it[labelKey]);
      var y = m.top + i * rowH;
      var x0 = xAt(Math.max(scale.min, 0));
      var x1 = xAt(v);
      var g = svg('g', { class: 'bar', 'data-label': label, 'data-value': v });
      g.appendChild(svg('title', {}, opts.title ? opts.title(it) : label + ': ' + format(v)));
      g.appendChild(svg('rect', { x: 0, y: y, width: W, height: rowH, class: 'hover' }));
      g.appendChild(svg('text', { x: m.left - 8, y: y + rowH / 2 + 4, 'text-anchor': 'end', class: 'bar-label' }, truncate(label, 24)));
      g.appendChild(svg('rect', { x: Math.min(x0, x1).toFixed(1), y: y + 4, width: Math.max(1, Math.abs(x1 - x0)).toFixed(1), height: rowH - 8, rx: 2, class: 'bar-rect' }));
      g.appendChild(svg('text', { x: Math.max(x0, x1) + 6, y: y + rowH / 2 + 4, class: 'bar-value' }, format(v)));
      bars.appendChild(g);
    });
    root.appendChild(bars);

    container.replaceChildren(root);
  }

  // ---------------------------------------------------------------- sign-in flow

  var ui = null;        // the login section's elements, built on first use
  var onReadyFn = null; // the page's start function

  // Builds the sign-in form (once) just before <main id="main">.
  function loginUi() {
    if (ui) { return ui; }
    var main = document.getElementById('main');
    var error = el('p', { id: 'login-error', attrs: { role: 'alert' } });
    var user = el('input', { type: 'text', id: 'login-username', name: 'username', required: true, attrs: { autocomplete: 'username' } });
    var password = el('input', { type: 'password', id: 'login-password', name: 'password', required: true, attrs: { autocomplete: 'current-password' } });
    var submit = el('button', { type: 'submit', className: 'primary', id: 'login-submit', text: 'Sign in' });
    var form = el('form', { id: 'login-form', attrs: { autocomplete: 'on' } }, [
      el('h2', { text: 'Sign in to Sightline' }),
      el('label', { htmlFor: 'login-username', text: 'Username or email' }), user,
      el('label', { htmlFor: 'login-password', text: 'Password' }), password,
      submit, error
    ]);
    var section = el('section', { id: 'login', hidden: true }, form);
    if (main && main.parentNode) { main.parentNode.insertBefore(section, main); } else { document.body.appendChild(section); }

    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      error.textContent = '';
      submit.disabled = true;
      fetch('/api/v1/auth/login', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'Accept': 'application/json' },
        body: JSON.stringify({ username: user.value.trim(), password: password.value })
      }).then(function (res) {
        return res.text().then(function (text) {
          var data = parseJson(text);
          if (!res.ok) {
            error.textContent = apiError(res.status, res.statusText, data).message;
            return;
          }
          keepTokens(data);
          password.value = '';
          ready();
        });
      }).catch(function (e) {
        error.textContent = 'Could not sign in: ' + e.message;
      }).then(function () {
        submit.disabled = false;
      });
    });

    var signout = document.getElementById('signout');
    if (signout) { signout.addEventListener('click', signOut); }

    ui = { section: section, main: main, error: error, user: user };
    return ui;
  }

  function showLogin(message) {
    var u = loginUi();
    if (u.main) { u.main.hidden = true; }
    u.section.hidden = false;
    u.error.textContent = message || '';
    toggleHeader(false);
    u.user.focus();
  }

  function toggleHeader(signedIn) {
    var who = document.getElementById('whoami');
    if (who) { who.textContent = signedIn && stored(USER) ? 'Signed in as ' + stored(USER) : ''; }
    var signout = document.getElementById('signout');
    if (signout) { signout.hidden = !signedIn; }
  }

  function ready() {
    var u = loginUi();
    u.section.hidden = true;
    if (u.main) { u.main.hidden = false; }
    toggleHeader(true);
    if (onReadyFn) { onReadyFn(); }
  }

  // True while a token is stored and the sign-in form is not showing.
  function signedIn() {
    return !!token() && !(ui && !ui.section.hidden);
  }

  // Signs out (revoking the refresh token) and shows the sign-in form.
  function signOut() {
    var refresh = stored(REFRESH);
    var done = function () { forgetTokens(); showLogin(''); };
    if (!refresh) { done(); return; }
    api('POST', '/api/v1/auth/logout', { refresh_token: refresh }).then(done, done);
  }

  // Starts a page: onReady runs once the user is signed in, and again after every new sign-in
  // (so it must be safe to call more than once).
  function start(onReady) {
    onReadyFn = onReady;
    loginUi();
    if (!token()) { showLogin(''); return; }
    ready();
  }

  window.Sightline = {
    start: start,
    signOut: signOut,
    signedIn: signedIn,
    showLogin: showLogin,
    token: token,
    user: function () { return stored(USER); },
    keepTokens: keepTokens,
    forgetTokens: forgetTokens,
    refreshTokens: refreshTokens,
    authHeaders: authHeaders,
    api: api,
    apiError: apiError,
    parseJson: parseJson,
    signedOutError: signedOutError,
    sessionEnded: sessionEnded,
    download: download,
    el: el,
    append: append,
    setStatus: setStatus,
    setCard: setCard,
    query: query,
    fmt: fmt,
    day: { parse: parseDay, iso: isoDay, add: addDays, between: daysBetween },
    round2: round2,
    charts: { line: lineChart, bars: barChart }
  };
})();
