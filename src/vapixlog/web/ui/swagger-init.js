// Swagger UI for one of the device's OpenAPI documents (allow-listed by the server).
"use strict";
window.ui = SwaggerUIBundle({
  url: document.currentScript.dataset.url,
  dom_id: "#swagger-ui",
  deepLinking: true,
});
