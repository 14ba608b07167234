// Renders one of the device's Markdown documents. The server has allow-listed the source;
// raw HTML in the Markdown is shown as text, and what marked makes of the rest goes through
// DOMPurify before it reaches the page (the CSP forbids inline script on top of that).
"use strict";
(() => {
  const source = document.currentScript.dataset.source;
  const view = document.getElementById("doc");
  const escapeHtml = (text) =>
    text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  marked.use({ renderer: { html: (token) => escapeHtml(token.text ?? "") } });
  fetch(source, { credentials: "same-origin", redirect: "error" })
    .then((response) => {
      if (!response.ok) throw new Error(response.status + " " + response.statusText);
      return response.text();
    })
    .then((text) => {
      view.innerHTML = DOMPurify.sanitize(marked.parse(text), { USE_PROFILES: { html: true } });
    })
    .catch((error) => { view.textContent = "Cannot load: " + error; });
})();
