// Recommender console: vanilla JS over the service's own JSON endpoints (same origin only).
// Data is written with textContent, never as HTML. The admin token lives in sessionStorage
// (this tab only) and is sent only to this service.
"use strict";

(() => {
  const REFRESH_MS = 3000;
  const SIGNALS = ["cf", "content", "item_similarity", "popularity", "quality"];
  const TOKEN_KEY = "recsys-console-admin-token";
  const $ = (id) => document.getElementById(id);
  const state = {
    previous: null, // the last /stats answer (rates are differences)
    modelId: undefined,
    info: null,
    seq: 0,
    debounce: null,
    brands: new Set(),
    categories: new Set(),
  };

  // ---------------------------------------------------------------- helpers
  function token() {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  }

  async function api(path, body) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (token()) headers["X-Admin-Token"] = token();
    const init = { headers, cache: "no-store" };
    if (body !== undefined) {
      init.method = "POST";
      init.body = JSON.stringify(body);
    }
    try {
      const response = await fetch(path, init);
      const text = await response.text();
      let data = null;
      try {
        data = JSON.parse(text);
      } catch (_) {
        data = { error: { code: "not_json", message: text.slice(0, 200) } };
      }
      return { ok: response.ok, status: response.status, body: data };
    } catch (exc) {
      return { ok: false, status: 0, body: { error: { code: "network", message: String(exc) } } };
    }
  }

  function errorText(answer) {
    const error = answer.body && answer.body.error;
    const message = error ? `${error.code}: ${error.message}` : JSON.stringify(answer.body);
    return `HTTP ${answer.status} — ${message}`;
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null) continue;
      if (key === "class") node.className = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function fixed(value, digits = 3) {
    return typeof value === "number" && Number.isFinite(value) ? value.toFixed(digits) : "–";
  }

  function price(value) {
    if (typeof value !== "number") return "giá ?";
    return `${value.toLocaleString("vi-VN")} ₫`;
  }

  function percent(value) {
    return typeof value === "number" && Number.isFinite(value) ? `${(value * 100).toFixed(1)} %` : "–";
  }

  // ---------------------------------------------------------------- health
  async function refreshHealth() {
    const [health, stats] = await Promise.all([api("/health"), api("/stats")]);
    const status = $("health-status");
    const body = health.body || {};
    status.textContent = body.status || `HTTP ${health.status}`;
    status.className = `value ${health.ok ? "status-ok" : "status-bad"}`;
    status.title = body.reason || "";
    $("serving").textContent = body.model_id ? `serving ${body.model_id}` : "no model loaded";
    if (stats.ok) renderStats(stats.body);
    $("health-updated").textContent = `updated ${new Date().toLocaleTimeString("vi-VN")}`;
    const modelId = (stats.ok && stats.body.model_id) || body.model_id || null;
    if (modelId !== state.modelId) {
      state.modelId = modelId;
      await loadModel();
    }
  }

  function renderStats(stats) {
    const previous = state.previous;
    state.previous = stats;
    if (previous && stats.uptime_seconds > previous.uptime_seconds) {
      const seconds = stats.uptime_seconds - previous.uptime_seconds;
      const requests = stats.requests_total - previous.requests_total;
      const errors = stats.errors_total - previous.errors_total;
      $("request-rate").textContent = (requests / seconds).toFixed(1);
      $("error-rate").textContent = requests > 0 ? percent(errors / requests) : "0.0 %";
    } else {
      $("request-rate").textContent = "…";
      const total = stats.requests_total;
      $("error-rate").textContent = total ? percent(stats.errors_total / total) : "0.0 %";
    }
    const reloads = stats.reloads || {};
    const reload = $("reload-state");
    reload.textContent = `${reloads.successes ?? 0} ok · ${reloads.failures ?? 0} failed`;
    reload.className = `value ${reloads.last_error ? "status-bad" : ""}`;
    reload.title = reloads.last_error ? JSON.stringify(reloads.last_error) : "";
    const caches = stats.caches || {};
    const rates = Object.entries(caches)
      .filter(([, value]) => value && typeof value.hit_rate === "number")
      .map(([name, value]) => `${name} ${percent(value.hit_rate)}`);
    const warmup = caches.warmup && caches.warmup.state ? ` · warm-up ${caches.warmup.state}` : "";
    $("cache-rates").textContent = rates.length ? rates.join(" · ") + warmup : "no model";
    const rows = Object.entries(stats.endpoints || {}).map(([endpoint, value]) => {
      const latency = value.latency_ms || {};
      return el(
        "tr",
        {},
        el("td", {}, endpoint),
        el("td", {}, value.count),
        el("td", {}, value.errors),
        el("td", {}, fixed(latency.p50, 2)),
        el("td", {}, fixed(latency.p99, 2)),
      );
    });
    $("endpoint-table").tBodies[0].replaceChildren(...rows);
  }

  // ---------------------------------------------------------------- model + registry
  async function loadModel() {
    const [info, registry] = await Promise.all([api("/model_info"), api("/registry")]);
    state.info = info.ok ? info.body : null;
    renderFacts(state.info, info);
    renderEvaluation(state.info ? state.info.metrics : null);
    renderSamples(state.info ? state.info.sample_user_ids : null);
    renderRegistry(registry);
    resetSliders(state.lastSegment || "trainable");
  }

  function renderFacts(info, answer) {
    const facts = $("model-facts");
    if (!info) {
      facts.replaceChildren(el("dt", {}, "model"), el("dd", {}, errorText(answer)));
      return;
    }
    const hybrid = info.hybrid || {};
    const shown = [
      ["model id", info.model_id],
      ["type", info.model_type],
      ["factors", info.factors],
      ["data version", info.data_version],
      ["embedding version", info.embedding_version],
      ["embedding model", info.embedding_model],
      ["created", info.created_at],
      ["loaded", info.loaded_at],
      ["users / trainable / products", `${info.n_users} / ${info.n_trainable_users} / ${info.n_items}`],
      ["hybrid", `${hybrid.normalisation || "?"} · recency decay ${hybrid.recency_decay ?? "?"}`],
    ];
    facts.replaceChildren(
      ...shown.flatMap(([name, value]) => [
        el("dt", {}, name),
        el("dd", { id: `fact-${name.replace(/\W+/g, "-")}` }, value ?? "–"),
      ]),
    );
  }

  function renderEvaluation(metrics) {
    const table = $("eval-table");
    if (!metrics) {
      table.tHead.replaceChildren();
      table.tBodies[0].replaceChildren();
      return;
    }
    const lines = [];
    const names = new Set();
    for (const [segment, rows] of Object.entries(metrics)) {
      if (!rows || typeof rows !== "object") continue;
      for (const [row, values] of Object.entries(rows)) {
        if (!values || typeof values !== "object") continue;
        Object.keys(values).forEach((name) => names.add(name));
        lines.push([segment, row, values]);
      }
    }
    const columns = [...names].sort();
    table.tHead.replaceChildren(
      el("tr", {}, el("th", {}, "segment"), el("th", {}, "row"), ...columns.map((c) => el("th", {}, c))),
    );
    table.tBodies[0].replaceChildren(
      ...lines.map(([segment, row, values]) =>
        el(
          "tr",
          { class: row === "hybrid" ? "current" : "" },
          el("td", {}, segment),
          el("td", {}, row),
          ...columns.map((c) => el("td", {}, fixed(values[c], 4))),
        ),
      ),
    );
  }

  function renderSamples(samples) {
    const box = $("samples");
    const list = $("sample-ids");
    const buttons = [];
    const options = [];
    for (const [segment, ids] of Object.entries(samples || {})) {
      buttons.push(el("span", { class: "seg" }, segment));
      for (const id of (ids || []).slice(0, 3)) {
        buttons.push(sampleButton(id, segment));
        options.push(el("option", { value: id }, segment));
      }
    }
    const visitor = `visitor-${Math.floor(Math.random() * 1e6)}`;
    buttons.push(el("span", { class: "seg" }, "unknown"), sampleButton(visitor, "unknown"));
    if (!samples) buttons.push(el("span", { class: "muted small" }, " (sample ids need the admin token)"));
    box.replaceChildren(...buttons);
    list.replaceChildren(...options);
  }

  function sampleButton(id, segment) {
    return el(
      "button",
      {
        type: "button",
        class: "sample",
        dataset: { userId: id, segment },
        onclick: () => {
          $("user-id").value = id;
          lookup();
        },
      },
      id,
    );
  }

  function renderRegistry(answer) {
    const body = $("registry-table").tBodies[0];
    if (!answer.ok) {
      body.replaceChildren(el("tr", {}, el("td", { colspan: 7 }, errorText(answer))));
      return;
    }
    const registry = answer.body;
    const rows = [...registry.models].reverse().map((model) => {
      const current = model.model_id === registry.current;
      return el(
        "tr",
        { class: current ? "current" : "", dataset: { modelId: model.model_id } },
        el("td", {}, model.model_id),
        el("td", {}, model.model_type),
        el("td", {}, model.status),
        el("td", {}, model.created_at),
        el("td", {}, model.data_version),
        el("td", {}, fixed(model.gate_value, 4)),
        el(
          "td",
          {},
          current
            ? "current"
            : el("button", { type: "button", class: "promote", onclick: () => promote(model.model_id) }, "Promote"),
        ),
      );
    });
    body.replaceChildren(...rows);
    $("rollback").disabled = registry.history.length === 0;
  }

  async function registryChange(path, body, what) {
    const message = $("registry-message");
    message.className = "";
    message.textContent = `${what} …`;
    const answer = await api(path, body);
    if (answer.ok) {
      const b = answer.body;
      message.textContent = b.reload_error
        ? `${what}: registry now ${b.model_id}, but this worker still serves ${b.serving_model_id}: ${b.reload_error}`
        : `${what}: now serving ${b.serving_model_id}`;
    } else {
      message.className = "error";
      message.textContent = `${what} refused: ${errorText(answer)}`;
    }
    state.modelId = undefined; // reload the model view on the next refresh
    await refreshHealth();
  }

  function promote(modelId) {
    const force = $("force-promote").checked;
    return registryChange("/registry/promote", { model_id: modelId, force }, `promote ${modelId}`);
  }

  // ---------------------------------------------------------------- explorer
  function buildSliders() {
    const box = $("weight-sliders");
    for (const signal of SIGNALS) {
      const input = el("input", {
        type: "range", min: "0", max: "1", step: "0.01", value: "0", id: `w-${signal}`,
        dataset: { signal }, "aria-label": `weight of ${signal}`,
      });
      const output = el("output", { id: `w-${signal}-value`, for: `w-${signal}` }, "0.00");
      input.addEventListener("input", () => {
        output.textContent = Number(input.value).toFixed(2);
        $("custom-weights").checked = true;
        scheduleLookup();
      });
      box.append(el("label", { for: `w-${signal}` }, signal), input, output);
    }
  }

  function resetSliders(segment) {
    const weights = (state.info && state.info.hybrid && state.info.hybrid.weights) || {};
    // the range covers the model's largest tuned weight (only ratios between weights matter)
    const largest = Math.max(1, ...Object.values(weights).flatMap((w) => Object.values(w || {})));
    for (const signal of SIGNALS) {
      const slider = $(`w-${signal}`);
      slider.max = String(largest);
      slider.step = String(largest / 100);
    }
    if ($("custom-weights").checked) return; // the operator's weights stay
    const defaults = weights[segment] || {};
    for (const signal of SIGNALS) {
      const value = Number(defaults[signal] || 0);
      $(`w-${signal}`).value = String(value);
      $(`w-${signal}-value`).textContent = value.toFixed(2);
    }
  }

  function requestBody() {
    const body = {
      user_id: $("user-id").value.trim(),
      topk: Number($("topk").value) || 10,
      exclude_seen: $("exclude-seen").checked,
      rerank: $("rerank").checked,
      explain: true,
    };
    const filters = {};
    const brand = $("f-brand").value.trim();
    const category = $("f-category").value.trim();
    const skin = $("f-skin").value.trim();
    if (brand) filters.brand = [brand];
    if (category) filters.category = [category];
    if (skin) filters.skin_type = [skin];
    const low = $("f-price-min").value;
    const high = $("f-price-max").value;
    if (low !== "") filters.price_min = Number(low);
    if (high !== "") filters.price_max = Number(high);
    if (Object.keys(filters).length) body.filters = filters;
    const context = $("context-items").value.split(",").map((id) => id.trim()).filter(Boolean);
    if (context.length) body.context_items = context;
    if ($("custom-weights").checked) {
      body.rerank_weights = Object.fromEntries(SIGNALS.map((s) => [s, Number($(`w-${s}`).value)]));
    }
    return body;
  }

  function scheduleLookup() {
    clearTimeout(state.debounce);
    document.body.dataset.state = "busy";
    state.debounce = setTimeout(() => {
      state.debounce = null;
      lookup();
    }, 250);
  }

  async function lookup() {
    const body = requestBody();
    if (!body.user_id) {
      if (!state.debounce && document.body.dataset.state === "busy") document.body.dataset.state = "ready";
      return;
    }
    const seq = ++state.seq;
    document.body.dataset.state = "busy";
    const list = $("recommendations");
    $("request-body").textContent = JSON.stringify(body, null, 1);
    const [rec, history] = await Promise.all([
      api("/recommend", body),
      api(`/user_history?user_id=${encodeURIComponent(body.user_id)}&limit=20`),
    ]);
    if (seq !== state.seq) return; // a newer lookup is under way
    const error = $("explorer-error");
    if (rec.ok) {
      error.textContent = "";
      const answer = rec.body;
      state.lastSegment = answer.segment;
      resetSliders(answer.segment);
      $("result-meta").textContent =
        `${answer.user_id}: segment ${answer.segment}, strategy ${answer.strategy}` +
        `${answer.is_fallback ? ` (fallback: ${answer.fallback_method})` : ""}, ` +
        `${answer.recommendations.length} items, ${fixed(answer.latency_ms, 1)} ms`;
      list.replaceChildren(...answer.recommendations.map(recommendationItem));
      Object.assign(list.dataset, { user: answer.user_id, segment: answer.segment, strategy: answer.strategy, error: "" });
    } else {
      error.textContent = errorText(rec);
      list.replaceChildren();
      Object.assign(list.dataset, { user: body.user_id, segment: "", strategy: "", error: rec.body.error ? rec.body.error.code : "error" });
    }
    renderHistory(history);
    list.dataset.seq = String(seq);
    // "ready" only when no lookup is scheduled or under way: the list answers the request shown
    if (!state.debounce) document.body.dataset.state = "ready";
  }

  function remember(record) {
    if (record.brand) state.brands.add(record.brand);
    if (record.category) state.categories.add(record.category);
  }

  function refreshChoices() {
    $("brands").replaceChildren(...[...state.brands].sort().map((b) => el("option", { value: b })));
    $("categories").replaceChildren(...[...state.categories].sort().map((c) => el("option", { value: c })));
  }

  function productLine(record, extra) {
    remember(record);
    const rating = typeof record.avg_rating === "number"
      ? ` · ★ ${record.avg_rating.toFixed(1)} (${record.num_ratings ?? 0})` : "";
    return [
      el("div", { class: "name" }, record.name || record.product_id, ...(extra || [])),
      el(
        "div",
        { class: "meta" },
        `${record.product_id} · ${record.brand || "?"} · ${record.category || "?"} · ${price(record.price)}${rating}`,
      ),
    ];
  }

  function recommendationItem(record) {
    const score = typeof record.score === "number" ? el("span", { class: "tag" }, `score ${fixed(record.score)}`) : null;
    const item = el(
      "li",
      { class: "product", dataset: { productId: record.product_id }, onclick: () => similar(record) },
      ...productLine(record, [score]),
    );
    const signals = (record.explain && record.explain.signals) || {};
    const bars = Object.entries(signals).map(([name, part]) => {
      const width = Math.max(0, Math.min(1, Number(part.value) || 0));
      const fill = el("div", { class: "fill" });
      fill.style.width = `${(width * 100).toFixed(1)}%`;
      return el(
        "span",
        { class: "bar", dataset: { signal: name }, title: `${name}: value ${part.value} × weight ${part.weight} = ${part.contribution}` },
        name,
        el("span", { class: "track" }, fill),
        fixed(part.contribution, 2),
      );
    });
    if (bars.length) item.append(el("div", { class: "bars" }, ...bars));
    refreshChoices();
    return item;
  }

  function renderHistory(answer) {
    const list = $("history");
    const meta = $("history-meta");
    if (!answer.ok) {
      meta.textContent = answer.status === 401 || answer.status === 403
        ? "(needs the admin token here: admin.public_sample_ids is off)" : errorText(answer);
      list.replaceChildren();
      return;
    }
    const h = answer.body;
    meta.textContent = h.total ? `(${h.items.length} of ${h.total}, newest first)` : "(no history)";
    list.replaceChildren(
      ...h.items.map((record) => {
        const tags = [];
        if (record.live) tags.push(el("span", { class: "tag" }, "live"));
        if (!record.positive) tags.push(el("span", { class: "tag" }, "not liked"));
        return el(
          "li",
          { class: "product", dataset: { productId: record.product_id }, onclick: () => similar(record) },
          ...productLine(record, tags),
        );
      }),
    );
    refreshChoices();
  }

  async function similar(record) {
    document.querySelectorAll(".product.selected").forEach((n) => n.classList.remove("selected"));
    document.querySelectorAll(`.product[data-product-id="${CSS.escape(record.product_id)}"]`)
      .forEach((n) => n.classList.add("selected"));
    const meta = $("similar-meta");
    meta.textContent = `to ${record.name || record.product_id} …`;
    const answer = await api("/similar_items", { product_id: record.product_id, topk: 8 });
    const list = $("similar");
    if (!answer.ok) {
      meta.textContent = errorText(answer);
      list.replaceChildren();
      return;
    }
    meta.textContent = `to ${record.name || record.product_id} (${answer.body.method})`;
    list.replaceChildren(
      ...answer.body.similar_items.map((item) => {
        const score = typeof item.similarity === "number" ? el("span", { class: "tag" }, `sim ${fixed(item.similarity)}`)
          : typeof item.score === "number" ? el("span", { class: "tag" }, `score ${fixed(item.score)}`) : null;
        return el(
          "li",
          { class: "product", dataset: { productId: item.product_id }, onclick: () => similar(item) },
          ...productLine(item, [score]),
        );
      }),
    );
    list.dataset.productId = record.product_id;
  }

  // ---------------------------------------------------------------- experiments
  const EXPERIMENT_METRICS = ["ctr", "cart_rate", "purchase_rate", "revenue_per_impression"];

  function rateText(value) {
    return `${(value * 100).toFixed(2)} %`;
  }

  function metricCells(metric, cell) {
    const money = metric === "revenue_per_impression";
    const show = money ? (v) => v.toFixed(2) : rateText;
    const [low, high] = cell.ci95;
    const ci = money ? `[${low.toFixed(2)}, ${high.toFixed(2)}]` : `[${(low * 100).toFixed(2)}, ${(high * 100).toFixed(2)}] %`;
    const test = cell.vs_control;
    const p = test ? `${test.p_value.toFixed(4)}${test.significant ? " *" : ""}` : "control";
    return [
      el(
        "td",
        { dataset: { metric } },
        el("span", { class: "value" }, show(cell.value)),
        " ",
        el("span", { class: "ci muted small" }, ci),
      ),
      el("td", { class: test && test.significant ? "significant" : "", dataset: { metric: `${metric}-p` } }, p),
    ];
  }

  function experimentTable(exp) {
    const running = exp.status === "running";
    const rows = exp.variants.map((row) =>
      el(
        "tr",
        { class: row.variant === exp.winner ? "current" : "", dataset: { variant: row.variant } },
        el("td", {}, row.variant, row.control ? el("span", { class: "muted small" }, " (control)") : null),
        el("td", { dataset: { metric: "impressions" } }, row.impressions),
        ...EXPERIMENT_METRICS.flatMap((metric) => metricCells(metric, row[metric])),
        el(
          "td",
          {},
          running
            ? el("button", { type: "button", class: "ab-promote", onclick: () => experimentChange(exp.experiment, `promote/${row.variant}`) }, "Promote")
            : "",
        ),
      ),
    );
    const head = el(
      "tr",
      {},
      ...["Variant", "Impressions", "CTR", "p", "Add-to-cart", "p", "Purchase", "p", "Revenue / impression", "p", ""].map((h) => el("th", {}, h)),
    );
    const verdict = exp.verdict ? `${exp.verdict.ctr} · revenue: ${exp.verdict.revenue_per_impression}` : "";
    return el(
      "div",
      { class: "experiment", dataset: { experiment: exp.experiment, status: exp.status } },
      el(
        "h3",
        {},
        `${exp.experiment} `,
        el("span", { class: "muted ab-status" }, `${exp.status}${exp.winner ? ` → ${exp.winner}` : ""} · traffic ${percent(exp.traffic)}`),
        " ",
        running ? el("button", { type: "button", class: "ab-stop", onclick: () => experimentChange(exp.experiment, "stop") }, "Stop") : null,
      ),
      el("p", { class: "small ab-verdict" }, verdict),
      el("div", { class: "scroll" }, el("table", { class: "grid ab-table" }, el("thead", {}, head), el("tbody", {}, ...rows))),
    );
  }

  async function refreshExperiments() {
    const box = $("experiments");
    if (!token()) {
      box.replaceChildren(el("p", { class: "muted small" }, "Needs the admin token (GET /experiments)."));
      return;
    }
    const answer = await api("/experiments");
    if (!answer.ok) {
      box.replaceChildren(el("p", { class: "error" }, errorText(answer)));
      return;
    }
    const list = answer.body.experiments || [];
    box.replaceChildren(...(list.length ? list.map(experimentTable) : [el("p", { class: "muted small" }, "No experiment configured (experiments.running).")]));
    box.dataset.loaded = String(Date.now());
    $("experiments-updated").textContent = `updated ${new Date().toLocaleTimeString("vi-VN")}`;
  }

  async function experimentChange(name, action) {
    if (!window.confirm(`${action.replace("/", " ")} experiment ${name}? This cannot be undone.`)) return;
    const message = $("experiments-message");
    const answer = await api(`/experiments/${encodeURIComponent(name)}/${action}`, {});
    message.className = answer.ok ? "" : "error";
    message.textContent = answer.ok
      ? `${name}: ${answer.body.status}${answer.body.winner ? ` → ${answer.body.winner}` : ""}`
      : `${name} ${action} refused: ${errorText(answer)}`;
    await refreshExperiments();
  }

  // ---------------------------------------------------------------- token
  function showToken() {
    $("token-state").textContent = token() ? "token set (this tab only)" : "no token: read-only";
  }

  function wire() {
    $("token-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const value = $("admin-token").value.trim();
      if (value) sessionStorage.setItem(TOKEN_KEY, value);
      $("admin-token").value = "";
      showToken();
      state.modelId = undefined;
      refreshHealth();
      refreshExperiments();
    });
    $("token-forget").addEventListener("click", () => {
      sessionStorage.removeItem(TOKEN_KEY);
      showToken();
      state.modelId = undefined;
      refreshHealth();
      refreshExperiments();
    });
    $("rollback").addEventListener("click", () => registryChange("/registry/rollback", {}, "rollback"));
    $("user-form").addEventListener("submit", (event) => {
      event.preventDefault();
      lookup();
    });
    $("custom-weights").addEventListener("change", () => {
      resetSliders(state.lastSegment || "trainable");
      scheduleLookup();
    });
    for (const id of ["topk", "exclude-seen", "rerank", "context-items", "f-brand", "f-category", "f-skin", "f-price-min", "f-price-max"]) {
      $(id).addEventListener("change", scheduleLookup);
    }
    $("refresh-seconds").textContent = String(REFRESH_MS / 1000);
  }

  document.addEventListener("DOMContentLoaded", async () => {
    buildSliders();
    wire();
    showToken();
    await refreshHealth();
    setInterval(refreshHealth, REFRESH_MS);
    refreshExperiments();
    setInterval(refreshExperiments, REFRESH_MS);
    const wanted = new URLSearchParams(window.location.search).get("user");
    if (wanted) {
      $("user-id").value = wanted;
      await lookup();
    }
    if (document.body.dataset.state === "loading") document.body.dataset.state = "idle";
  });
})();
