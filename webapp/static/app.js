"use strict";
// DermaScan page: choose or drop a photo, preview it, POST it to /api/predict, show the answer.
(function () {
  const $ = (id) => document.getElementById(id);
  const form = $("upload-form"), fileInput = $("file-input"), cameraInput = $("camera-input");
  const dropZone = $("drop-zone"), analyse = $("analyse"), statusBox = $("status");
  const errorBox = $("error"), result = $("result");
  const RISK_TEXT = {
    high: "Risk level: high — see a dermatologist promptly. DermaScan marks a photo high " +
      "risk whenever a skin cancer is a real possibility, so many photos marked high turn " +
      "out to be harmless; only a doctor can tell.",
    medium: "Risk level: medium — discuss it with a doctor at your next visit, sooner if it changes.",
    low: "Risk level: low concern — keep an eye on it and see a doctor if it changes.",
  };
  const UNCERTAIN_TEXT = {
    low_confidence: "The model is not confident about this photo, so it does not name a " +
      "condition. If the lesion worries you, or is new or changing, see a doctor.",
    not_skin: "This does not look like a close-up photo of a skin lesion, so the model gives " +
      "no answer. Try a sharp, well-lit close-up of the lesion.",
  };
  // A model's probability is never a certainty: show "over 99%" / "under 1%" at the ends.
  function percent(p) {
    if (p >= 0.995) return "over 99%";
    if (p < 0.005) return "under 1%";
    return (100 * p).toFixed(0) + "%";
  }
  let chosen = null;
  let conditions = {};
  fetch("/api/conditions").then((r) => r.json()).then((list) => {
    for (const c of list) conditions[c.code] = c;
  }).catch(() => {});

  function choose(file) {
    if (!file) return;
    chosen = file;
    $("preview-img").src = URL.createObjectURL(file);
    $("preview-name").textContent = file.name;
    $("preview").hidden = false;
    analyse.disabled = false;
    errorBox.hidden = true;
    statusBox.textContent = "Photo ready. Press “Analyse the photo”.";
  }
  fileInput.addEventListener("change", () => choose(fileInput.files[0]));
  cameraInput.addEventListener("change", () => choose(cameraInput.files[0]));
  dropZone.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); fileInput.click(); }
  });
  ["dragenter", "dragover"].forEach((t) => dropZone.addEventListener(t, (e) => {
    e.preventDefault(); dropZone.classList.add("dragging");
  }));
  ["dragleave", "drop"].forEach((t) => dropZone.addEventListener(t, (e) => {
    e.preventDefault(); dropZone.classList.remove("dragging");
  }));
  dropZone.addEventListener("drop", (e) => choose(e.dataTransfer.files[0]));

  function showError(message) {
    result.hidden = true;
    errorBox.textContent = message;
    errorBox.hidden = false;
    statusBox.textContent = "";
  }

  function render(answer) {
    errorBox.hidden = true;
    const top = answer.top, info = conditions[top.code] || {};
    const uncertain = $("uncertain");
    uncertain.hidden = !answer.uncertain;
    uncertain.textContent = answer.uncertain ? UNCERTAIN_TEXT[answer.uncertain_reason] : "";
    const notSkin = answer.uncertain_reason === "not_skin";
    $("answer").hidden = notSkin;
    $("probabilities").hidden = notSkin;
    $("top-name").textContent = answer.uncertain ? top.name + " (uncertain)" : top.name;
    $("top-prob").textContent = percent(top.probability);
    const risk = $("risk");
    risk.className = "risk " + answer.risk_level;
    risk.textContent = RISK_TEXT[answer.risk_level];
    $("cond-title").textContent = info.name || top.name;
    $("cond-description").textContent = info.description || "";
    $("cond-appearance").textContent = info.appearance || "";
    $("cond-action").textContent = info.recommended_action || "";
    $("weighting-note").hidden = top.code === answer.predictions[0].code;
    const bars = $("bars");
    bars.replaceChildren();
    for (const p of answer.predictions) {
      const li = document.createElement("li");
      const pct = percent(p.probability);
      const name = document.createElement("span");
      name.textContent = p.name;
      const bar = document.createElement("span");
      bar.className = "bar";
      bar.setAttribute("role", "img");
      bar.setAttribute("aria-label", p.name + ": " + pct);
      const fill = document.createElement("span");
      fill.style.width = Math.max(0.5, 100 * p.probability) + "%";
      bar.appendChild(fill);
      const value = document.createElement("span");
      value.textContent = pct;
      li.append(name, bar, value);
      bars.appendChild(li);
    }
    const sal = $("saliency");
    sal.hidden = !answer.saliency_png || notSkin;
    if (answer.saliency_png) $("saliency-img").src = "data:image/png;base64," + answer.saliency_png;
    $("model-version").textContent = answer.model_version;
    result.hidden = false;
    statusBox.textContent = "Result ready.";
    $("result-title").focus && result.scrollIntoView({ behavior: "smooth", block: "start" });
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!chosen) { showError("Choose a photo first."); return; }
    const body = new FormData();
    body.append("file", chosen, chosen.name);
    body.append("explain", $("explain").checked ? "true" : "false");
    analyse.disabled = true;
    statusBox.textContent = "Analysing…";
    try {
      const response = await fetch("/api/predict", { method: "POST", body });
      const data = await response.json().catch(() => ({ detail: "Unexpected answer from the server." }));
      if (!response.ok) showError(data.detail || "The photo could not be analysed.");
      else render(data);
    } catch (err) {
      showError("Could not reach the server. Check your connection and try again.");
    } finally {
      analyse.disabled = false;
    }
  });
})();
