// gymbus view — the single-page front end of `gymbus view` (no build step, no framework).
//
// Rollout content is untrusted: every DOM node built from data goes through
// createElement / textContent / setAttribute (see `el`). The one innerHTML is the
// server-rendered, server-escaped plots page. `src` attributes are only ever set to
// `/media/<sha256>` or to a `data:image/` URL (see `mediaUrl`, `setSrc`).
"use strict";

(() => {
  const PAGE_SIZE = 50;
  const FOLLOW_MS = 2000;
  const POLL_MS = 500;
  const TEXT_CHUNK = 200000;
  const SHA_RE = /^[0-9a-f]{64}$/;
  const FACETS = [
    ["env", "Environment"],
    ["status", "Status"],
    ["failure_kind", "Failure kind"],
    ["capability", "Capability"],
    ["structure", "Structure"],
    ["weight_version", "Weight version"],
  ];
  const TEXT_FILTERS = ["q", "group", "reward_min", "reward_max"];
  const FILTER_KEYS = FACETS.map((f) => f[0]).concat(TEXT_FILTERS);
  const AUTHORS = new Set(["policy", "user", "tool", "environment"]);

  const app = document.getElementById("app");
  const state = {
    seq: 0, // bumped on every route change; stale async renders check it
    status: null,
    shell: null, // the filter panel + main area, kept across list/plots refreshes
    pollErrors: 0,
  };

  // ---------------------------------------------------------------- DOM helpers

  // el("div", {class: "x", text: "...", testid: "y", onclick: fn, title: "..."}, ...kids)
  // Attribute values go through setAttribute (never parsed as HTML). `src`/`href` are
  // refused here: use setSrc / hashLink / mediaLink, which validate them.
  function el(tag, props, ...kids) {
    const node = document.createElement(tag);
    if (props) {
      for (const [key, value] of Object.entries(props)) {
        if (value === null || value === undefined || value === false) continue;
        if (key === "class") node.className = value;
        else if (key === "text") node.textContent = String(value);
        else if (key === "testid") node.setAttribute("data-testid", value);
        else if (key.startsWith("on") && typeof value === "function") {
          node.addEventListener(key.slice(2), value);
        } else if (key === "src" || key === "href" || key.startsWith("on")) {
          throw new Error(`el(): ${key} must be set through a validating helper`);
        } else node.setAttribute(key, value === true ? "" : String(value));
      }
    }
    add(node, kids);
    return node;
  }

  // replaceChildren that skips null/false (the native one would print "null")
  function put(parent, ...kids) {
    parent.replaceChildren();
    return add(parent, kids);
  }

  function add(parent, kids) {
    for (const kid of kids) {
      if (kid === null || kid === undefined || kid === false) continue;
      if (Array.isArray(kid)) add(parent, kid);
      else if (kid instanceof Node) parent.appendChild(kid);
      else parent.appendChild(document.createTextNode(String(kid)));
    }
    return parent;
  }

  // An in-app link: `hash` is built by us from encoded segments and always starts "#/".
  function hashLink(hash, props, ...kids) {
    if (!hash.startsWith("#/")) throw new Error("hashLink: not an app route");
    const a = el("a", props, ...kids);
    a.setAttribute("href", hash);
    return a;
  }

  function mediaUrl(sha) {
    return typeof sha === "string" && SHA_RE.test(sha) ? `/media/${sha}` : null;
  }

  function isDataImage(url) {
    return typeof url === "string" && /^data:image\//i.test(url);
  }

  function setSrc(node, url) {
    const ok =
      (typeof url === "string" && /^\/media\/[0-9a-f]{64}$/.test(url)) || isDataImage(url);
    if (!ok) throw new Error("refusing a media source that is not /media/<sha256> or data:image/");
    node.setAttribute("src", url);
    return node;
  }

  function mediaLink(sha, text) {
    const url = mediaUrl(sha);
    if (!url) return null;
    const a = el("a", { class: "media-open", target: "_blank", rel: "noopener noreferrer" }, text);
    a.setAttribute("href", url);
    return a;
  }

  function errorBox(err) {
    const message = err instanceof Error ? err.message : String(err);
    return el("div", { class: "error", role: "alert", testid: "error" },
      el("strong", { text: "Error: " }), message);
  }

  function loading(what) {
    return el("p", { class: "muted pad", testid: "loading" }, `Loading ${what || ""}…`);
  }

  function badge(status) {
    const known = status === "scored" || status === "failed";
    return el("span", { class: `badge ${known ? `badge-${status}` : ""}`, testid: "status" },
      String(status ?? "?"));
  }

  function chips(values, cls) {
    if (!Array.isArray(values) || values.length === 0) return el("span", { class: "muted" }, "—");
    return el("span", { class: "chips" },
      values.map((v) => el("span", { class: `chip ${cls || ""}` }, typeof v === "string" ? v : JSON.stringify(v))));
  }

  function kvTable(pairs, testid) {
    return el("table", { class: "kv", testid },
      el("tbody", null, pairs.filter((p) => p).map(([k, v]) =>
        el("tr", null, el("th", null, k), el("td", null, v)))));
  }

  function section(title, ...kids) {
    return el("section", { class: "card" }, el("h3", null, title), ...kids);
  }

  // ---------------------------------------------------------------- formatting

  const nf = new Intl.NumberFormat("en-US");

  function fmtInt(n) {
    return typeof n === "number" && Number.isFinite(n) ? nf.format(n) : "—";
  }

  function fmtNum(x, digits = 3) {
    if (typeof x !== "number" || !Number.isFinite(x)) return "—";
    if (Number.isInteger(x)) return String(x);
    return String(+x.toFixed(digits));
  }

  function fmtSec(s) {
    if (typeof s !== "number" || !Number.isFinite(s)) return "—";
    return s < 10 ? s.toFixed(3) : s.toFixed(1);
  }

  function fmtBytes(n) {
    if (typeof n !== "number") return "?";
    if (n < 1024) return `${n} B`;
    if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
    return `${(n / 1024 / 1024).toFixed(1)} MB`;
  }

  function fmtDate(ts) {
    if (typeof ts !== "number" || !Number.isFinite(ts)) return "—";
    const d = new Date(ts * 1000);
    return Number.isNaN(d.getTime()) ? "—" : d.toLocaleString("sv-SE");
  }

  function signClass(x) {
    if (typeof x !== "number" || !Number.isFinite(x) || x === 0) return "zero";
    return x > 0 ? "pos" : "neg";
  }

  function codePoints(s) {
    let n = 0;
    for (const _ of s) n++;
    return n;
  }

  function shorten(s, n) {
    return s.length > n ? `${s.slice(0, n - 1)}…` : s;
  }

  // ---------------------------------------------------------------- API

  async function api(path) {
    let response;
    try {
      response = await fetch(path, { headers: { Accept: "application/json" } });
    } catch (err) {
      throw new Error(`cannot reach the gymbus view server (${err.message || err})`);
    }
    let body = null;
    try {
      body = await response.json();
    } catch {
      body = null;
    }
    if (!response.ok) {
      const detail = body && typeof body.error === "string" ? body.error : response.statusText;
      const error = new Error(`${detail} (HTTP ${response.status})`);
      error.status = response.status;
      throw error;
    }
    if (body === null) throw new Error(`${path}: the server did not answer JSON`);
    return body;
  }

  // ---------------------------------------------------------------- routing

  function safeDecode(s) {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  }

  function parseHash() {
    const raw = location.hash.replace(/^#/, "") || "/";
    const qi = raw.indexOf("?");
    const path = qi >= 0 ? raw.slice(0, qi) : raw;
    const params = new URLSearchParams(qi >= 0 ? raw.slice(qi + 1) : "");
    const parts = path.split("/").filter((p) => p !== "").map(safeDecode);
    return { parts, params };
  }

  function qs(params) {
    const s = params.toString();
    return s ? `?${s}` : "";
  }

  // Only the filter keys (plus, optionally, more keys) of `params`.
  function pick(params, extra) {
    const out = new URLSearchParams();
    for (const key of FILTER_KEYS.concat(extra || [])) {
      for (const v of params.getAll(key)) if (v !== "") out.append(key, v);
    }
    return out;
  }

  function listHash(params) {
    return `#/${qs(params)}`;
  }

  function episodeHash(id, context) {
    return `#/episode/${encodeURIComponent(String(id))}${context ? qs(context) : ""}`;
  }

  function groupHash(groupId) {
    return `#/group/${encodeURIComponent(groupId)}`;
  }

  function isLive(seq) {
    return seq === state.seq;
  }

  async function route() {
    const seq = ++state.seq;
    const { parts, params } = parseHash();
    setNav(parts[0] || "");
    try {
      if (parts.length === 0) await showList(params, seq);
      else if (parts[0] === "plots") await showPlots(params, seq);
      else if (parts[0] === "episode" && parts.length === 2) await showEpisode(parts[1], params, seq);
      else if (parts[0] === "group" && parts.length >= 2) await showGroup(parts.slice(1).join("/"), seq);
      else throw new Error(`unknown page: ${location.hash}`);
    } catch (err) {
      if (!isLive(seq)) return;
      if (state.shell && state.shell.root.isConnected) put(state.shell.main, errorBox(err));
      else {
        state.shell = null;
        put(app, errorBox(err), el("p", { class: "pad" }, hashLink("#/", null, "← all episodes")));
      }
    }
  }

  function setNav(first) {
    const plots = first === "plots";
    document.getElementById("nav-episodes").classList.toggle("active", !plots);
    document.getElementById("nav-plots").classList.toggle("active", plots);
    // keep the current filters when switching between the table and the plots
    const { params } = parseHash();
    const filters = first === "" || plots ? pick(params) : new URLSearchParams();
    document.getElementById("nav-plots").setAttribute("href", `#/plots${qs(filters)}`);
    document.getElementById("nav-episodes").setAttribute("href", `#/${qs(filters)}`);
  }

  // ---------------------------------------------------------------- status bar

  function renderStatus(st) {
    const files = document.getElementById("files");
    put(files, ...(st.files || []).map((f) => {
      const name = String(f.path || "").split(/[\\/]/).pop();
      const media = f.media_dir ? "media folder: " + f.media_dir : "no media folder";
      return el("span", { class: "file", title: `${f.path} — ${fmtInt(f.lines)} lines — ${media}` }, name);
    }));
    const progress = document.getElementById("progress");
    if (st.done) {
      progress.textContent = `${fmtInt(st.indexed)} lines indexed${st.following ? " · following" : ""}`;
      progress.classList.remove("busy");
    } else {
      progress.textContent = `indexing… ${fmtInt(st.indexed)} lines`;
      progress.classList.add("busy");
    }
    const box = document.getElementById("problems");
    const count = st.problem_count || 0;
    if (!count) {
      box.classList.add("hidden");
      box.replaceChildren();
      return;
    }
    box.classList.remove("hidden");
    const list = el("ul", null, (st.problems || []).map((p) =>
      el("li", null, el("code", null, `${p.file}:${p.line}`), " ", p.message)));
    const more = count > (st.problems || []).length
      ? el("p", { class: "muted" }, `(first ${(st.problems || []).length} shown)`) : null;
    const wasOpen = box.querySelector("details")?.open;
    put(box, el("details", { open: wasOpen || null },
      el("summary", null, `${fmtInt(count)} unreadable line${count === 1 ? "" : "s"} skipped — everything else is browsable`),
      list, more));
  }

  async function pollStatus() {
    let st;
    try {
      st = await api("/api/status");
      state.pollErrors = 0;
    } catch (err) {
      state.pollErrors += 1;
      document.getElementById("progress").textContent = `status unavailable: ${err.message}`;
      if (state.pollErrors < 10) setTimeout(pollStatus, POLL_MS * 4);
      return;
    }
    const wasIndexing = state.status !== null && !state.status.done;
    const grew = state.status !== null && st.indexed !== state.status.indexed;
    state.status = st;
    renderStatus(st);
    const { parts } = parseHash();
    const onList = parts.length === 0;
    const onPlots = parts[0] === "plots";
    if (!st.done) {
      if (onList) refresh();
      setTimeout(pollStatus, POLL_MS);
    } else {
      const typing = document.activeElement instanceof HTMLInputElement;
      // the complete counts once indexed; new lines of a followed file (not mid-typing)
      if ((wasIndexing || (grew && !typing)) && (onList || onPlots)) refresh();
      if (st.following) setTimeout(pollStatus, FOLLOW_MS); // `gymbus view --follow`
    }
  }

  function refresh() {
    route();
  }

  // ---------------------------------------------------------------- filter panel

  function debounce(fn, ms) {
    let timer = null;
    return (...args) => {
      clearTimeout(timer);
      timer = setTimeout(() => fn(...args), ms);
    };
  }

  function ensureShell(base) {
    if (state.shell && state.shell.base === base && state.shell.root.isConnected) return state.shell;
    const panel = makePanel(base);
    const main = el("div", { class: "main" }, loading());
    const root = el("div", { class: "shell" }, panel.node, main);
    put(app, root);
    state.shell = { base, root, panel, main };
    return state.shell;
  }

  function makePanel(base) {
    const input = (key, props) => el("input", { class: "input", testid: `filter-${key.replace("_", "-")}`, name: key, ...props });
    const q = input("q", { type: "search", placeholder: "id, task, env, failure…", autocomplete: "off" });
    const group = input("group", { type: "text", placeholder: "exact group id", autocomplete: "off" });
    const rmin = input("reward_min", { type: "number", step: "any", placeholder: "min", class: "input num" });
    const rmax = input("reward_max", { type: "number", step: "any", placeholder: "max", class: "input num" });
    const facets = el("div", { class: "facets" });
    const groups = el("span", { class: "muted" });
    const panel = {
      base, q, group, rmin, rmax, facets, groups,
      params: new URLSearchParams(),
      inputs: { q, group, reward_min: rmin, reward_max: rmax },
    };
    const commit = () => {
      const next = new URLSearchParams();
      for (const [key] of FACETS) {
        for (const box of facets.querySelectorAll(`fieldset[data-key="${key}"] input:checked`)) {
          next.append(key, box.value);
        }
      }
      for (const key of TEXT_FILTERS) {
        const v = panel.inputs[key].value.trim();
        if (v !== "") next.set(key, v);
      }
      for (const key of ["sort", "order"]) {
        const v = panel.params.get(key);
        if (v) next.set(key, v);
      }
      location.hash = `#/${base}${qs(next)}`;
    };
    panel.commit = commit;
    q.addEventListener("input", debounce(commit, 350));
    for (const node of [q, group, rmin, rmax]) {
      node.addEventListener("change", commit);
      node.addEventListener("keydown", (e) => { if (e.key === "Enter") commit(); });
    }
    const clear = el("button", {
      type: "button", class: "link-button", testid: "filter-clear",
      onclick: () => { location.hash = `#/${base}`; },
    }, "clear");
    panel.node = el("aside", { class: "panel", testid: "filters" },
      el("div", { class: "panel-title" }, el("span", null, "Filters"), clear),
      el("label", { class: "field" }, el("span", null, "Search"), q),
      el("div", { class: "field" }, el("span", null, "Reward"),
        el("div", { class: "range" }, rmin, el("span", { class: "muted" }, "to"), rmax)),
      el("label", { class: "field" }, el("span", null, "Group"), group, groups),
      facets);
    return panel;
  }

  function fillPanel(panel, facets, params) {
    panel.params = params;
    for (const key of TEXT_FILTERS) {
      const node = panel.inputs[key];
      if (document.activeElement !== node) node.value = params.get(key) || "";
    }
    panel.groups.textContent = typeof facets.groups === "number" ? `${fmtInt(facets.groups)} groups` : "";
    const collapsed = {};
    for (const fs of panel.facets.querySelectorAll("fieldset")) collapsed[fs.dataset.key] = fs.classList.contains("collapsed");
    const sets = [];
    for (const [key, label] of FACETS) {
      const counts = new Map(Object.entries(facets[key] || {}));
      const selected = new Set(params.getAll(key));
      for (const v of selected) if (!counts.has(v)) counts.set(v, 0);
      const names = [...counts.keys()].sort((a, b) => counts.get(b) - counts.get(a) || a.localeCompare(b));
      if (names.length === 0) continue;
      const legend = el("legend", {
        onclick: (e) => e.currentTarget.parentElement.classList.toggle("collapsed"),
      }, label, el("span", { class: "muted" }, ` ${names.length}`));
      const fs = el("fieldset", {
        class: `facet${collapsed[key] ? " collapsed" : ""}`, testid: `filter-${key.replace("_", "-")}`, "data-key": key,
      }, legend, el("div", { class: "facet-values" }, names.map((name) =>
        el("label", { class: "check", title: name },
          el("input", { type: "checkbox", value: name, checked: selected.has(name) || null, onchange: panel.commit }),
          el("span", { class: "facet-name" }, name),
          el("span", { class: "count" }, fmtInt(counts.get(name)))))));
      sets.push(fs);
    }
    put(panel.facets, ...sets);
  }

  // ---------------------------------------------------------------- episode list

  const COLUMNS = [
    { label: "#", sort: "id", cls: "num" },
    { label: "env", sort: "env" },
    { label: "task" },
    { label: "seed/sample", sort: "seed", cls: "num" },
    { label: "status", sort: "status" },
    { label: "reward", sort: "reward", cls: "num" },
    { label: "failure" },
    { label: "turns", sort: "turns", cls: "num" },
    { label: "prompt", sort: "prompt_tokens", cls: "num", title: "prompt tokens" },
    { label: "compl.", sort: "completion_tokens", cls: "num", title: "completion tokens" },
    { label: "wall s", sort: "wall_s", cls: "num" },
    { label: "weights" },
    { label: "group" },
  ];

  async function showList(params, seq) {
    const shell = ensureShell("");
    const query = pick(params, ["sort", "order"]);
    const offset = Math.max(0, parseInt(params.get("offset") || "0", 10) || 0);
    query.set("offset", String(offset));
    query.set("limit", String(PAGE_SIZE));
    const [facets, page] = await Promise.all([api("/api/facets"), api(`/api/episodes?${query}`)]);
    if (!isLive(seq)) return;
    fillPanel(shell.panel, facets, params);
    put(shell.main, renderTable(page, params));
  }

  function renderTable(page, params) {
    const rows = Array.isArray(page.rows) ? page.rows : [];
    const offset = page.offset || 0;
    const total = page.total || 0;
    const sort = params.get("sort") || "id";
    const order = params.get("order") || "asc";
    const indexing = state.status && !state.status.done;
    const count = rows.length
      ? `rows ${fmtInt(offset + 1)}–${fmtInt(offset + rows.length)} of ${fmtInt(total)}`
      : `0 rows of ${fmtInt(total)}`;
    const goto = (newOffset) => {
      const next = pick(params, ["sort", "order"]);
      if (newOffset > 0) next.set("offset", String(newOffset));
      location.hash = listHash(next);
    };
    const pager = el("div", { class: "pager" },
      el("button", { type: "button", class: "button", testid: "page-prev", disabled: offset <= 0 || null,
        onclick: () => goto(Math.max(0, offset - PAGE_SIZE)) }, "← prev"),
      el("span", { class: "row-count", testid: "row-count" }, count, indexing ? " (indexing…)" : ""),
      el("button", { type: "button", class: "button", testid: "page-next", disabled: offset + rows.length >= total || null,
        onclick: () => goto(offset + PAGE_SIZE) }, "next →"));
    const head = el("tr", null, COLUMNS.map((col) => {
      if (!col.sort) return el("th", { class: col.cls || null }, col.label);
      const active = col.sort === sort;
      const arrow = active ? (order === "desc" ? " ▼" : " ▲") : "";
      return el("th", {
        class: `sortable ${col.cls || ""} ${active ? "sorted" : ""}`,
        testid: `sort-${col.sort}`, title: `sort by ${col.title || col.sort}`,
        onclick: () => {
          // from the URL as it is now: a second click may come before this table is redrawn
          const now = parseHash().params;
          const again = (now.get("sort") || "id") === col.sort && (now.get("order") || "asc") === "asc";
          const next = pick(now);
          next.set("sort", col.sort);
          next.set("order", again ? "desc" : "asc");
          location.hash = listHash(next);
        },
      }, col.label, arrow);
    }));
    const body = el("tbody", null, rows.map((row, i) => renderRow(row, params, offset + i)));
    const table = el("table", { class: "episodes", testid: "episode-table" }, el("thead", null, head), body);
    const empty = rows.length ? null : el("p", { class: "muted pad" }, indexing ? "No matching rows yet — still indexing." : "No matching rows.");
    return el("div", { class: "list" }, pager, el("div", { class: "table-wrap" }, table), empty, rows.length > 20 ? bottomPager(pager) : null);
  }

  // A second pager under the table: same buttons, wired to the same handlers.
  function bottomPager(pager) {
    const [prev, , next] = pager.children;
    return el("div", { class: "pager bottom" },
      el("button", { type: "button", class: "button", disabled: prev.disabled || null, onclick: () => prev.click() }, "← prev"),
      el("span", { class: "row-count" }, pager.children[1].textContent),
      el("button", { type: "button", class: "button", disabled: next.disabled || null, onclick: () => next.click() }, "next →"));
  }

  function renderRow(row, params, position) {
    const context = pick(params, ["sort", "order"]);
    context.set("pos", String(position));
    const hash = episodeHash(row.id, context);
    const group = row.group_id
      ? hashLink(groupHash(row.group_id), { class: "group-link", title: `group ${row.group_id} (${row.group_size})` },
        String(row.group_id), row.group_size > 1 ? ` ×${row.group_size}` : "")
      : el("span", { class: "muted" }, "—");
    const failure = row.failure_kind
      ? el("span", { class: "fail-kind", title: row.failure_message || "" }, row.failure_kind)
      : null;
    return el("tr", {
      class: `row ${row.status === "failed" ? "row-failed" : ""}`, testid: "episode-row", "data-id": row.id,
      onclick: (e) => { if (!e.target.closest("a")) location.hash = hash; },
    },
    el("td", { class: "num" }, hashLink(hash, null, String(row.id))),
    el("td", { class: "env" }, el("span", { class: "env-name" }, row.env), row.has_media ? el("span", { class: "media-dot", title: "has media" }, " ◆") : null),
    el("td", { class: "task", title: row.episode_id || "" }, row.task_id),
    el("td", { class: "num" }, `${row.seed ?? "—"} / ${row.sample ?? "—"}`),
    el("td", null, badge(row.status)),
    el("td", { class: "num reward" }, fmtNum(row.reward)),
    el("td", null, failure),
    el("td", { class: "num" }, fmtInt(row.turns)),
    el("td", { class: "num" }, fmtInt(row.prompt_tokens)),
    el("td", { class: "num" }, fmtInt(row.completion_tokens)),
    el("td", { class: "num" }, fmtSec(row.wall_s)),
    el("td", { class: "muted" }, row.weight_version ?? "—"),
    el("td", { class: "group" }, group));
  }

  // ---------------------------------------------------------------- plots

  async function showPlots(params, seq) {
    const shell = ensureShell("plots");
    const filters = pick(params);
    const [facets, plots] = await Promise.all([api("/api/facets"), api(`/api/plots${qs(filters)}`)]);
    if (!isLive(seq)) return;
    fillPanel(shell.panel, facets, params);
    const box = el("div", { class: "plots", testid: "plots" });
    // The only innerHTML: server-rendered SVG figures, escaped by the server.
    box.innerHTML = typeof plots.html === "string" ? plots.html : "";
    put(shell.main,
      el("div", { class: "pager" }, el("span", { class: "row-count" }, filters.toString() ? "Plots of the filtered episodes" : "Plots of all episodes"),
        hashLink(listHash(filters), { class: "button" }, "table of these episodes →")),
      box);
  }

  // ---------------------------------------------------------------- JSON & strings

  function isTrunc(v) {
    return v !== null && typeof v === "object" && v.$truncated === true && typeof v.head === "string";
  }

  function isOmitted(v) {
    return v !== null && typeof v === "object" && v.$omitted === true;
  }

  // A string of the rollout: plain, or a `$truncated` marker with a "show more" button.
  function strNode(value, ctx) {
    if (typeof value === "string") return document.createTextNode(value);
    if (isTrunc(value)) return truncated(value, ctx);
    if (value === null || value === undefined) return document.createTextNode("");
    return document.createTextNode(JSON.stringify(value));
  }

  function truncated(marker, ctx) {
    const text = document.createTextNode(marker.head);
    let loaded = codePoints(marker.head);
    let total = typeof marker.length === "number" ? marker.length : loaded;
    const button = el("button", { type: "button", class: "more", testid: "show-more" });
    const node = el("span", { class: "truncated", testid: "truncated" }, text, button);
    const update = () => {
      const rest = total - loaded;
      if (rest <= 0) button.remove();
      else button.textContent = `… ${fmtInt(rest)} more characters — show more`;
    };
    button.addEventListener("click", async (e) => {
      e.preventDefault();
      e.stopPropagation();
      button.disabled = true;
      button.textContent = "loading…";
      try {
        const q = new URLSearchParams({ path: String(marker.path), offset: String(loaded), length: String(TEXT_CHUNK) });
        const r = await api(`/api/episodes/${encodeURIComponent(String(ctx.id))}/text?${q}`);
        const chunk = typeof r.text === "string" ? r.text : "";
        if (typeof r.length === "number") total = r.length;
        text.appendData(chunk);
        loaded = (typeof r.offset === "number" ? r.offset : loaded) + codePoints(chunk);
        if (chunk === "") loaded = total;
        button.disabled = false;
        update();
      } catch (err) {
        button.disabled = false;
        button.textContent = `could not load (${err.message}) — retry`;
      }
    });
    update();
    return node;
  }

  // Load a whole truncated string (for a data:image URL), then call done(text).
  async function loadFull(marker, ctx) {
    let text = marker.head;
    let loaded = codePoints(marker.head);
    const total = marker.length;
    while (loaded < total) {
      const q = new URLSearchParams({ path: String(marker.path), offset: String(loaded), length: "1000000" });
      const r = await api(`/api/episodes/${encodeURIComponent(String(ctx.id))}/text?${q}`);
      if (typeof r.text !== "string" || r.text === "") break;
      text += r.text;
      loaded += codePoints(r.text);
    }
    return text;
  }

  // Pretty JSON as DOM: strings stay text nodes, `$truncated` strings get a "show more"
  // button, `$omitted` arrays a short note.
  function jsonView(value, ctx, testid) {
    const pre = el("pre", { class: "json", testid });
    let buffer = "";
    const flush = () => {
      if (buffer) pre.appendChild(document.createTextNode(buffer));
      buffer = "";
    };
    const node = (n) => {
      flush();
      pre.appendChild(n);
    };
    const pad = (n) => "  ".repeat(n);
    const walk = (v, depth) => {
      if (isTrunc(v)) {
        buffer += '"';
        node(truncated(v, ctx));
        buffer += '"';
      } else if (isOmitted(v)) {
        node(el("span", { class: "muted" }, `${fmtInt(v.length)} items (omitted)`));
      } else if (Array.isArray(v)) {
        if (v.length === 0) { buffer += "[]"; return; }
        buffer += "[\n";
        v.forEach((x, i) => {
          buffer += pad(depth + 1);
          walk(x, depth + 1);
          buffer += i < v.length - 1 ? ",\n" : "\n";
        });
        buffer += `${pad(depth)}]`;
      } else if (v !== null && typeof v === "object") {
        const keys = Object.keys(v);
        if (keys.length === 0) { buffer += "{}"; return; }
        buffer += "{\n";
        keys.forEach((k, i) => {
          buffer += `${pad(depth + 1)}${JSON.stringify(k)}: `;
          walk(v[k], depth + 1);
          buffer += i < keys.length - 1 ? ",\n" : "\n";
        });
        buffer += `${pad(depth)}}`;
      } else {
        buffer += JSON.stringify(v === undefined ? null : v);
      }
    };
    walk(value, 0);
    flush();
    return pre;
  }

  // A <details> whose body is built on first open (large JSON stays cheap).
  function lazyDetails(summary, build, props) {
    const details = el("details", props, el("summary", null, summary));
    let built = false;
    details.addEventListener("toggle", () => {
      if (details.open && !built) {
        built = true;
        details.appendChild(build());
      }
    });
    return details;
  }

  // ---------------------------------------------------------------- episode page

  async function showEpisode(idText, params, seq) {
    if (!/^\d+$/.test(idText)) throw new Error(`not an episode number: ${idText}`);
    state.shell = null;
    put(app, loading("episode"));
    const data = await api(`/api/episodes/${encodeURIComponent(idText)}`);
    if (!isLive(seq)) return;
    put(app, renderEpisode(data, params));
    window.scrollTo(0, 0);
  }

  function episodeNav(row, params) {
    const pos = parseInt(params.get("pos") || "", 10);
    const hasContext = Number.isInteger(pos) && pos >= 0;
    const context = pick(params, ["sort", "order"]);
    const back = new URLSearchParams(context);
    if (hasContext && pos >= PAGE_SIZE) back.set("offset", String(Math.floor(pos / PAGE_SIZE) * PAGE_SIZE));
    const note = el("span", { class: "muted nav-note" });
    const step = async (delta, button) => {
      button.disabled = true;
      try {
        if (hasContext) {
          const target = pos + delta;
          if (target < 0) throw new Error("this is the first episode");
          const q = new URLSearchParams(context);
          q.set("offset", String(target));
          q.set("limit", "1");
          const page = await api(`/api/episodes?${q}`);
          if (!page.rows || page.rows.length === 0) throw new Error("this is the last episode");
          const next = new URLSearchParams(context);
          next.set("pos", String(target));
          location.hash = episodeHash(page.rows[0].id, next);
        } else {
          const target = row.id + delta;
          if (target < 0) throw new Error("this is the first episode");
          await api(`/api/episodes/${target}`).catch((err) => {
            throw err.status === 404 ? new Error(delta < 0 ? "this is the first episode" : "this is the last episode") : err;
          });
          location.hash = episodeHash(target);
        }
      } catch (err) {
        note.textContent = err.message;
        button.disabled = false;
      }
    };
    const prev = el("button", { type: "button", class: "button", testid: "episode-prev", title: "previous episode (k)" }, "← prev");
    const next = el("button", { type: "button", class: "button", testid: "episode-next", title: "next episode (j)" }, "next →");
    prev.addEventListener("click", () => step(-1, prev));
    next.addEventListener("click", () => step(1, next));
    return el("div", { class: "episode-nav" },
      hashLink(listHash(back), { class: "button", testid: "back-to-list" }, "↑ episodes"),
      prev, next,
      row.group_id ? hashLink(groupHash(row.group_id), { class: "button", testid: "group-link" },
        `group ${shorten(String(row.group_id), 40)} (${row.group_size})`) : null,
      el("span", { class: "muted file-line" }, `${row.file}:${row.line}`),
      note);
  }

  function renderEpisode(data, params) {
    const row = data.row || {};
    const r = data.rollout || {};
    const ctx = { id: row.id };
    const md = r.metadata || {};
    const failure = r.failure
      ? el("div", { class: "failure", testid: "failure" },
        el("div", { class: "failure-kind" }, "failed: ", el("strong", null, strNode(r.failure.kind, ctx))),
        el("pre", { class: "wrap" }, strNode(r.failure.message, ctx)))
      : null;
    const header = el("div", { class: "episode-header", testid: "episode-header" },
      el("h1", null, strNode(r.episode_id, ctx)),
      el("div", { class: "facts" },
        fact("env", strNode(r.env, ctx)),
        fact("task", strNode(r.task_id, ctx)),
        fact("seed", String(r.seed ?? "—")),
        fact("sample", String(r.sample ?? "—")),
        fact("status", badge(r.status)),
        fact("reward", el("strong", { class: "reward-big", testid: "reward" }, fmtNum(r.reward))),
        fact("stop", r.stop_reason == null ? "—" : strNode(r.stop_reason, ctx)),
        fact("turns", fmtInt(r.turns)),
        fact("messages", fmtInt((r.messages || []).length))),
      failure,
      data.schema_problem
        ? el("div", { class: "warning", testid: "schema-problem" },
          "This line is not a valid rollout (shown as it is): ", strNode(data.schema_problem, ctx))
        : null);

    const scores = Object.entries(r.scores || {});
    const scoreCard = section("Scores", scores.length
      ? kvTable(scores.map(([k, v]) => [k, el("span", { class: "num" }, fmtNum(v, 4))]), "scores")
      : el("p", { class: "muted" }, "none"));
    const t = r.timing || {};
    const timingCard = section("Timing", kvTable([
      ["started", fmtDate(t.started_at)],
      ["wall", `${fmtSec(t.wall_s)} s`],
      ["model", `${fmtSec(t.model_s)} s`],
      ["tools", `${fmtSec(t.tool_s)} s`],
      ["user", `${fmtSec(t.user_s)} s`],
      ["verify", `${fmtSec(t.verify_s)} s`],
    ], "timing"));
    const u = r.usage || {};
    const uu = r.user_usage || {};
    const usageCard = section("Usage", kvTable([
      ["prompt tokens", fmtInt(u.prompt_tokens)],
      ["completion tokens", fmtInt(u.completion_tokens)],
      (uu.prompt_tokens || uu.completion_tokens) ? ["user prompt / compl.", `${fmtInt(uu.prompt_tokens)} / ${fmtInt(uu.completion_tokens)}`] : null,
      r.user_cost_usd ? ["user cost", `$${fmtNum(r.user_cost_usd, 4)}`] : null,
      ["weight version", row.weight_version ?? "—"],
    ], "usage"));
    const mdPairs = [
      ["capabilities", chips(md.core_capabilities ?? md.capabilities ?? row.capabilities, "chip-cap")],
      ["structures", chips(md.rollout_structures ?? md.structures ?? row.structures, "chip-struct")],
    ];
    const shown = new Set(["core_capabilities", "capabilities", "rollout_structures", "structures"]);
    for (const [k, v] of Object.entries(md)) {
      if (shown.has(k)) continue;
      if (Array.isArray(v) && v.every((x) => typeof x === "string")) mdPairs.push([k, chips(v)]);
      else if (typeof v === "string" || isTrunc(v)) mdPairs.push([k, strNode(v, ctx)]);
      else mdPairs.push([k, jsonView(v, ctx)]);
    }
    const metaCard = section("Metadata", kvTable(mdPairs, "metadata"));

    const extras = [];
    extras.push(el("details", { class: "card", testid: "evidence" },
      el("summary", null, "Evidence"), jsonView(r.evidence ?? {}, ctx)));
    if (Array.isArray(r.context_events) && r.context_events.length) {
      extras.push(el("details", { class: "card" }, el("summary", null, `Context events (${r.context_events.length})`),
        jsonView(r.context_events, ctx)));
    }
    if (r.user_audit) {
      extras.push(el("details", { class: "card" }, el("summary", null, "User audit"), jsonView(r.user_audit, ctx)));
    }
    extras.push(lazyDetails("Raw rollout JSON", () => jsonView(r, ctx), { class: "card" }));

    const messages = Array.isArray(r.messages) ? r.messages : [];
    return el("div", { class: "episode", testid: "episode" },
      episodeNav(row, params),
      header,
      el("div", { class: "cards" }, scoreCard, timingCard, usageCard, metaCard),
      extras,
      el("h2", { class: "transcript-title" }, `Transcript · ${messages.length} messages`),
      renderTranscript(messages, ctx));
  }

  function fact(label, value) {
    return el("div", { class: "fact" }, el("span", { class: "fact-label" }, label), el("span", { class: "fact-value" }, value));
  }

  // ---------------------------------------------------------------- transcript

  function renderTranscript(messages, ctx) {
    // tool_call_id → index of the call's message and of the result's message
    const callAt = new Map();
    const resultAt = new Map();
    messages.forEach((m, i) => {
      if (m && m.role === "assistant" && Array.isArray(m.tool_calls)) {
        for (const c of m.tool_calls) if (c && typeof c.id === "string") callAt.set(c.id, i);
      }
      if (m && m.role === "tool" && typeof m.tool_call_id === "string") resultAt.set(m.tool_call_id, i);
    });
    const links = { callAt, resultAt, prefix: `t${++transcriptCounter}-` };
    return el("div", { class: "transcript", testid: "transcript" },
      messages.map((m, i) => renderMessage(m || {}, i, ctx, links)));
  }
  let transcriptCounter = 0;

  function jumpTo(id) {
    const target = document.getElementById(id);
    if (!target) return;
    for (const d of target.querySelectorAll("details.tool-result, details.tool-call")) d.open = true;
    target.scrollIntoView({ behavior: "smooth", block: "center" });
    target.classList.add("flash");
    setTimeout(() => target.classList.remove("flash"), 1200);
  }

  function jumpButton(label, id) {
    return el("button", { type: "button", class: "link-button", onclick: (e) => { e.preventDefault(); jumpTo(id); } }, label);
  }

  function renderMessage(m, i, ctx, links) {
    const role = typeof m.role === "string" ? m.role : "?";
    const author = AUTHORS.has(m.author) ? m.author : "other";
    const head = el("div", { class: "msg-head" },
      el("span", { class: `role role-${author}` }, role),
      m.author && m.author !== role ? el("span", { class: "author" }, String(m.author)) : null,
      role === "tool" && m.name ? el("span", { class: "tool-name" }, strNode(m.name, ctx)) : null,
      role === "tool" && m.is_error ? el("span", { class: "badge badge-failed", testid: "tool-error" }, "error") : null,
      el("span", { class: "msg-index muted" }, `#${i}`));
    const card = el("div", {
      class: `msg msg-${author}${m.is_error ? " msg-error" : ""}`, testid: "message",
      "data-role": role, "data-author": author, id: `${links.prefix}${i}`,
    }, head);

    if (role === "tool") {
      const preview = previewText(m.content);
      const callIndex = links.callAt.get(m.tool_call_id);
      const details = el("details", { class: `tool-result${m.is_error ? " is-error" : ""}`, testid: "tool-result" },
        el("summary", null,
          el("span", { class: "mono" }, m.is_error ? "error from " : "result of ", strNode(m.name ?? "tool", ctx)),
          el("span", { class: "muted preview" }, ` ${shorten(preview, 100)}`)),
        callIndex !== undefined ? el("div", { class: "muted small" }, "call in ", jumpButton(`#${callIndex}`, `${links.prefix}${callIndex}`),
          ` · id ${m.tool_call_id}`) : el("div", { class: "muted small" }, `tool_call_id ${m.tool_call_id ?? "—"}`),
        renderContent(m.content, ctx));
      card.appendChild(details);
      return card;
    }

    if (m.reasoning != null) {
      card.appendChild(el("details", { class: "reasoning", testid: "reasoning" },
        el("summary", null, "reasoning"), el("pre", { class: "wrap" }, strNode(m.reasoning, ctx))));
    }
    card.appendChild(renderContent(m.content, ctx));
    if (m.refusal != null) {
      card.appendChild(el("details", { class: "refusal", testid: "refusal" },
        el("summary", null, "refusal"), el("pre", { class: "wrap" }, strNode(m.refusal, ctx))));
    }
    if (Array.isArray(m.tool_calls)) {
      for (const call of m.tool_calls) card.appendChild(renderToolCall(call || {}, ctx, links));
    }
    if (m.generation) card.appendChild(genLine(m.generation));
    return card;
  }

  function previewText(content) {
    if (typeof content === "string") return content;
    if (!Array.isArray(content)) return "";
    for (const p of content) {
      if (p && p.type === "text") return typeof p.text === "string" ? p.text : isTrunc(p.text) ? p.text.head : "";
    }
    return content.length ? `[${content[0] && content[0].type}]` : "";
  }

  function renderToolCall(call, ctx, links) {
    let args = call.arguments;
    let parsed;
    let ok = false;
    if (typeof args === "string") {
      try {
        parsed = JSON.parse(args);
        ok = true;
      } catch {
        ok = false;
      }
    }
    let preview;
    if (ok && parsed && typeof parsed === "object" && !Array.isArray(parsed)) {
      preview = Object.entries(parsed).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(", ");
    } else if (typeof args === "string") preview = args;
    else if (isTrunc(args)) preview = args.head;
    else preview = "";
    const resultIndex = links.resultAt.get(call.id);
    const body = ok ? jsonView(parsed, ctx, "tool-arguments")
      : el("pre", { class: "wrap json", testid: "tool-arguments" }, strNode(args, ctx));
    return el("details", { class: "tool-call", testid: "tool-call" },
      el("summary", null, el("span", { class: "mono" },
        el("strong", null, strNode(call.name, ctx)), "(", el("span", { class: "muted" }, shorten(preview, 90)), ")")),
      el("div", { class: "muted small" }, `id ${call.id ?? "—"}`,
        resultIndex !== undefined ? [" · result in ", jumpButton(`#${resultIndex}`, `${links.prefix}${resultIndex}`)] : " · no result"),
      body);
  }

  function genLine(g) {
    const items = [];
    const u = g.usage || {};
    const push = (k, v) => { if (v !== null && v !== undefined && v !== "") items.push([k, v]); };
    push("model", g.model);
    push("prompt", fmtInt(u.prompt_tokens));
    push("completion", fmtInt(u.completion_tokens));
    if (typeof g.latency_s === "number") push("latency", `${fmtSec(g.latency_s)} s`);
    push("weights", g.weight_version);
    push("finish", g.finish_reason);
    if (typeof g.attempts === "number") push("attempts", String(g.attempts));
    if (typeof g.cost_usd === "number") push("cost", `$${fmtNum(g.cost_usd, 6)}`);
    const ids = (v, what) => {
      if (isOmitted(v)) push("", `${fmtInt(v.length)} ${what} (omitted)`);
      else if (Array.isArray(v)) push("", `${fmtInt(v.length)} ${what}`);
    };
    ids(g.prompt_token_ids, "prompt token ids");
    ids(g.token_ids, "token ids");
    ids(g.logprobs, "logprobs");
    return el("div", { class: "gen", testid: "generation" }, items.map(([k, v]) =>
      el("span", { class: "kv-item" }, k ? [el("span", { class: "k" }, k), " "] : null, el("span", { class: "v" }, typeof v === "string" ? v : String(v)))));
  }

  function renderContent(content, ctx) {
    const box = el("div", { class: "content" });
    if (typeof content === "string" || isTrunc(content)) {
      box.appendChild(el("pre", { class: "wrap" }, strNode(content, ctx)));
      return box;
    }
    if (!Array.isArray(content)) return box;
    for (const part of content) box.appendChild(renderPart(part || {}, ctx));
    return box;
  }

  function renderPart(part, ctx) {
    if (part.type === "text") return el("pre", { class: "wrap text-part" }, strNode(part.text, ctx));
    if (part.type === "image" || part.type === "audio" || part.type === "video") return renderMedia(part, ctx);
    return jsonView(part, ctx);
  }

  function mediaImg(url, testid) {
    const img = el("img", { class: "media-image", testid, alt: "image from the rollout", loading: "lazy", decoding: "async" });
    img.addEventListener("error", () => {
      img.classList.add("broken");
      img.replaceWith(el("div", { class: "media-missing", testid: "media-missing" }, "media not available (not in the media folder)"));
    });
    img.addEventListener("click", () => img.classList.toggle("zoom"));
    return setSrc(img, url);
  }

  function renderMedia(part, ctx) {
    const fig = el("figure", { class: `media media-kind-${part.type}`, testid: `media-${part.type}-part` });
    const m = part.media;
    if (m && typeof m === "object") {
      const url = mediaUrl(m.sha256);
      const mime = typeof m.mime_type === "string" ? m.mime_type : "";
      const caption = el("figcaption", { class: "muted small" }, `${part.type} · ${mime || "?"} · ${fmtBytes(m.size)} · `,
        mediaLink(m.sha256, "open"), " ", el("span", { class: "mono sha" }, String(m.sha256 || "").slice(0, 12)));
      if (!url) {
        fig.appendChild(el("div", { class: "media-missing" }, "invalid media reference"));
      } else if (part.type === "image") {
        fig.appendChild(mediaImg(url, "media-image"));
      } else if (part.type === "audio") {
        const audio = el("audio", { controls: true, preload: "metadata", testid: "media-audio" });
        fig.appendChild(setSrc(audio, url));
      } else if (/^image\//i.test(mime)) {
        // video stored as an animated image: show it, then a strip of its frames
        fig.appendChild(mediaImg(url, "media-image"));
        fig.appendChild(framesStrip(m.sha256));
      } else {
        const video = el("video", { controls: true, preload: "metadata", testid: "media-video" });
        fig.appendChild(setSrc(video, url));
      }
      fig.appendChild(caption);
      return fig;
    }
    const src = part.url;
    if (typeof src === "string" && isDataImage(src)) {
      fig.appendChild(mediaImg(src, "media-image"));
      fig.appendChild(el("figcaption", { class: "muted small" }, `${part.type} · inline data URL`));
    } else if (isTrunc(src) && isDataImage(src.head)) {
      const slot = el("div", { class: "muted small" }, `loading inline image (${fmtInt(src.length)} characters)…`);
      fig.appendChild(slot);
      loadFull(src, ctx).then((full) => {
        if (isDataImage(full)) slot.replaceWith(mediaImg(full, "media-image"));
      }).catch((err) => slot.replaceWith(errorBox(err)));
    } else {
      fig.appendChild(el("div", { class: "media-url", testid: "media-url" },
        `${part.type} by URL (not loaded): `, el("code", null, strNode(src, ctx))));
    }
    return fig;
  }

  function framesStrip(sha) {
    const strip = el("div", { class: "frames", testid: "media-frames" }, el("span", { class: "muted small" }, "frames…"));
    api(`/api/media/${encodeURIComponent(sha)}/frames?max=8`).then((r) => {
      const frames = (r.frames || []).filter((f) => f && mediaUrl(f.sha256));
      put(strip, el("span", { class: "muted small" }, `${frames.length} frame${frames.length === 1 ? "" : "s"}`),
        ...frames.map((f) => mediaImg(mediaUrl(f.sha256), "media-frame")));
    }).catch((err) => {
      put(strip, el("span", { class: "muted small" },
        err.status === 422 ? "not animated" : err.status === 404 ? "frames unavailable (media missing)" : `frames: ${err.message}`));
    });
    return strip;
  }

  // ---------------------------------------------------------------- group view

  async function showGroup(groupId, seq) {
    state.shell = null;
    put(app, loading("group"));
    const g = await api(`/api/groups/${encodeURIComponent(groupId)}`);
    if (!isLive(seq)) return;
    const rows = Array.isArray(g.rows) ? g.rows : [];
    const columns = rows.map((row) => groupColumn(row));
    const filter = new URLSearchParams({ group: String(g.group_id ?? groupId) });
    put(app, el("div", { class: "group", testid: "group" },
      el("div", { class: "episode-nav" },
        hashLink("#/", { class: "button" }, "↑ episodes"),
        hashLink(listHash(filter), { class: "button" }, "these rollouts in the table")),
      el("div", { class: "episode-header" },
        el("h1", null, "group ", String(g.group_id ?? groupId)),
        el("div", { class: "facts" },
          fact("rollouts", fmtInt(rows.length)),
          fact("mean reward", fmtNum(g.mean, 4)),
          fact("std", fmtNum(g.std, 4)))),
      el("div", { class: "group-cols", testid: "group-columns" }, columns.map((c) => c.node))));
    // fill the transcripts, a few at a time
    let next = 0;
    const worker = async () => {
      while (next < columns.length && isLive(seq)) {
        const c = columns[next++];
        try {
          const data = await api(`/api/episodes/${encodeURIComponent(String(c.row.id))}`);
          if (isLive(seq)) c.fill(data);
        } catch (err) {
          c.fail(err);
        }
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
  }

  function groupColumn(row) {
    const answer = el("div", { class: "answer", testid: "final-answer" }, loading());
    const transcript = el("div", { class: "gcol-transcript" });
    const node = el("section", { class: `gcol ${row.status === "failed" ? "gcol-failed" : ""}`, testid: "group-column", "data-id": row.id },
      el("div", { class: "gcol-head" },
        hashLink(episodeHash(row.id), { class: "strong" }, `#${row.id}`),
        el("span", { class: "muted" }, ` sample ${row.sample ?? "—"} `),
        badge(row.status)),
      kvTable([
        ["reward", el("strong", null, fmtNum(row.reward, 4))],
        ["advantage", el("span", { class: `adv ${signClass(row.advantage)}`, testid: "advantage" }, fmtNum(row.advantage, 4))],
        ["normalized", el("span", { class: `adv ${signClass(row.advantage_normalized)}` }, fmtNum(row.advantage_normalized, 4))],
        ["turns", fmtInt(row.turns)],
        ["tokens", `${fmtInt(row.prompt_tokens)} / ${fmtInt(row.completion_tokens)}`],
      ]),
      row.failure_kind ? el("div", { class: "failure small" }, el("strong", null, row.failure_kind), ": ", row.failure_message || "") : null,
      answer, transcript);
    return {
      row, node,
      fill(data) {
        const r = data.rollout || {};
        const ctx = { id: row.id };
        const messages = Array.isArray(r.messages) ? r.messages : [];
        let last = null;
        for (let i = messages.length - 1; i >= 0; i--) {
          if (messages[i] && messages[i].role === "assistant") { last = messages[i]; break; }
        }
        put(answer, el("div", { class: "muted small" }, "final answer"),
          last ? renderContent(last.content, ctx) : el("span", { class: "muted" }, "no assistant message"),
          last && (!Array.isArray(last.content) || last.content.length === 0) && Array.isArray(last.tool_calls)
            ? last.tool_calls.map((c) => el("div", { class: "mono small" }, strNode(c.name, ctx), "(…)")) : null);
        put(transcript, el("details", null,
          el("summary", null, `transcript (${messages.length} messages)`), renderTranscript(messages, ctx)));
      },
      fail(err) {
        put(answer, errorBox(err));
      },
    };
  }

  // ---------------------------------------------------------------- start

  // j / k: next / previous episode on an episode page
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || e.target.closest("input, textarea, select")) return;
    const id = { j: "episode-next", k: "episode-prev" }[e.key];
    const button = id && document.querySelector(`[data-testid="${id}"]`);
    if (button && !button.disabled) button.click();
  });
  window.addEventListener("hashchange", route);
  window.addEventListener("unhandledrejection", (e) => {
    app.prepend(errorBox(e.reason || "unexpected error"));
  });
  route();
  pollStatus();
})();
