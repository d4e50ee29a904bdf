// Swagger UI on the document this coordinator serves beside the page
// (openapi.json: /openapi.json at /docs, /api/openapi.json at /api/docs).
window.ui = SwaggerUIBundle({
  url: new URL("openapi.json", window.location.href).href,
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  validatorUrl: null, // never ask a remote validator: the page works offline
});
