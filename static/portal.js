// The portal's only script besides htmx: copy buttons and a run log that follows its tail.
// Loaded from a file (never inline) so a Content-Security-Policy without 'unsafe-inline' holds.
"use strict";

document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-copy], button[data-copy-from]");
  if (!button) return;
  const source = button.dataset.copyFrom && document.getElementById(button.dataset.copyFrom);
  const text = source ? source.textContent : button.dataset.copy;
  const done = () => {
    const label = button.textContent;
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = label; }, 1500);
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done);
  } else {
    // Plain http (a local portal): the Clipboard API is absent, a selected textarea works.
    const area = document.createElement("textarea");
    area.value = text;
    document.body.appendChild(area);
    area.select();
    document.execCommand("copy");
    area.remove();
    done();
  }
});

// A live run's log: fetch what was appended since `offset` and add it at the end. The view
// scrolls along only while the reader is at the bottom; scrolling up to read stops following.
function followLog(pre) {
  let offset = Number(pre.dataset.offset || 0);
  const tick = async () => {
    const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
    let body;
    try {
      const response = await fetch(`${pre.dataset.followUrl}?offset=${offset}`,
        { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!response.ok) return;
      body = await response.json();
    } catch (error) {
      setTimeout(tick, 5000); // the portal restarts: try again a little later
      return;
    }
    if (body.text) {
      pre.append(document.createTextNode(body.text));
      if (atBottom) pre.scrollTop = pre.scrollHeight;
    }
    offset = body.offset;
    if (body.active) setTimeout(tick, 1500);
  };
  pre.scrollTop = pre.scrollHeight;
  setTimeout(tick, 1500);
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("pre[data-follow-url]").forEach(followLog);
});

// The spec editor: a resource row shows only the settings of its kind.
document.addEventListener("change", (event) => {
  const select = event.target;
  if (!select.matches || !select.matches("tr.resource-row select[name$='-kind']")) return;
  select.closest("tr").querySelectorAll("[data-for-kind]").forEach((group) => {
    group.hidden = group.dataset.forKind !== select.value;
  });
});
