// ReDoc's sidebar shows a "powered by" logo from its CDN, with no option to
// turn it off. These pages fetch nothing from elsewhere (they work offline,
// behind firewalls), so any image URL outside this coordinator becomes an
// empty image before the browser asks for it.
(function () {
  const blank = "data:image/gif;base64,R0lGODlhAQABAAAAACH5BAEKAAEALAAAAAABAAEAAAICTAEAOw==";
  const local = (v) => { try { return new URL(v, location.href).origin === location.origin || String(v).startsWith("data:"); } catch { return false; } };
  const setAttribute = Element.prototype.setAttribute;
  Element.prototype.setAttribute = function (name, value) {
    if (this instanceof HTMLImageElement && name === "src" && !local(value)) value = blank;
    return setAttribute.call(this, name, value);
  };
  const src = Object.getOwnPropertyDescriptor(HTMLImageElement.prototype, "src");
  Object.defineProperty(HTMLImageElement.prototype, "src", {
    get() { return src.get.call(this); },
    set(value) { src.set.call(this, local(value) ? value : blank); },
  });
})();
