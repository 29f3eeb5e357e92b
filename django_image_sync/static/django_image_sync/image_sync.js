// django-image-sync's script: no dependencies, no build step.
//
// 1. Images still being resized: poll the JSON API with back-off, then show
//    their <picture> in place (its size was reserved from the first paint).
// 2. The upload form ({% upload_form %}): a drop zone over the page, paste,
//    previews, checks in the browser that mirror the server's settings, a
//    SHA-256 lookup so a file the uploader already has is never sent, one
//    request per file with progress, cancel and retry, then live status.
// 3. <time data-image-sync-localtime>: shown in the visitor's time zone.
//
// Without this script every page still works: the form posts, and pages with
// pending images refresh themselves.
(function () {
  "use strict";
  var DELAYS = [1000, 1500, 2000, 3000, 5000, 8000, 13000];
  var ORDER = ["AVIF", "WEBP", "JPEG", "PNG"];
  var MIME = { AVIF: "image/avif", WEBP: "image/webp", JPEG: "image/jpeg", PNG: "image/png" };
  var LANG = document.documentElement.lang || undefined;

  function readJSON(id) {
    var node = id && document.getElementById(id);
    if (!node) { return null; }
    try { return JSON.parse(node.textContent); } catch (e) { return null; }
  }

  var STATUS = readJSON("image-sync-strings") || {};

  // "%(name)s is %(size)s" with values; values are text, never markup.
  function fill(template, values) {
    return String(template).replace(/%\((\w+)\)s/g, function (all, key) {
      return values && values[key] !== undefined ? String(values[key]) : all;
    });
  }

  function announce(text) {
    var live = document.getElementById("image-sync-live");
    if (live) { live.textContent = text; }
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  // ---- pictures -----------------------------------------------------------

  function loaded(img) {
    // The placeholder would show through transparent parts of the image.
    if (img.complete && img.naturalWidth) { img.style.backgroundImage = "none"; return; }
    img.addEventListener("load", function () { img.style.backgroundImage = "none"; });
  }

  function srcset(outputs) {
    return outputs.map(function (o) { return o.url + " " + o.width + "w"; }).join(", ");
  }

  // The same markup as the {% picture %} tag, from the JSON API's image object.
  function pictureFor(data, sizes) {
    var outputs = data.renditions || [];
    var img = document.createElement("img");
    img.className = "image-sync-img";
    img.alt = data.name || "";
    img.decoding = "async";
    if (!outputs.length) {
      img.src = data.resized_url;
      img.width = data.resized_width;
      img.height = data.resized_height;
      return img;
    }
    var groups = {};
    outputs.forEach(function (o) { (groups[o.format] = groups[o.format] || []).push(o); });
    Object.keys(groups).forEach(function (f) {
      groups[f].sort(function (a, b) { return a.width - b.width; });
    });
    var main = outputs[0];
    img.src = main.url;
    img.srcset = srcset(groups[main.format]);
    img.sizes = sizes;
    img.width = main.width;
    img.height = main.height;
    if (data.placeholder) {
      img.style.backgroundImage = "url(" + data.placeholder + ")";
      img.style.backgroundSize = "cover";
      loaded(img);
    }
    var picture = document.createElement("picture");
    picture.className = "image-sync-picture";
    ORDER.concat(Object.keys(groups)).forEach(function (f, i, all) {
      if (f === main.format || !groups[f] || all.indexOf(f) !== i) { return; }
      var source = document.createElement("source");
      source.type = MIME[f] || "";
      source.srcset = srcset(groups[f]);
      source.sizes = sizes;
      picture.appendChild(source);
    });
    picture.appendChild(img);
    return picture;
  }

  // ---- live status --------------------------------------------------------

  // Ask `url` until the image is done or failed, waiting longer each time.
  // `last` is the status already shown: the first question waits too.
  function follow(url, onChange, last, attempt) {
    attempt = attempt || 0;
    window.setTimeout(function () {
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.json() : null; })
        .catch(function () { return undefined; })  // offline for a moment: ask again later
        .then(function (data) {
          if (data === null) { return; }  // gone, or no longer visible
          if (data && data.status !== last) { onChange(data); last = data.status; }
          if (data && (data.status === "done" || data.status === "failed")) { return; }
          follow(url, onChange, last, attempt + 1);
        });
    }, DELAYS[Math.min(attempt, DELAYS.length - 1)]);
  }

  function statusLabel(status) {
    return STATUS[status] || status;
  }

  function setStatusClass(node, status) {
    node.className = node.className.replace(/\bimage-sync-(pending|processing|done|failed)\b/,
      "image-sync-" + status);
  }

  function updateFigure(figure, data) {
    setStatusClass(figure, data.status);
    var box = figure.querySelector(".image-sync-placeholder");
    if (data.status === "done" && data.resized_url && box) {
      var sizes = figure.getAttribute("data-image-sync-sizes") || "100vw";
      var picture = pictureFor(data, sizes);
      var img = picture.querySelector ? (picture.querySelector("img") || picture) : picture;
      if (figure.getAttribute("data-image-sync-loading") === "eager") { img.loading = "eager"; }
      box.replaceWith(picture);
    } else if (box) {
      box.textContent = statusLabel(data.status);
      box.setAttribute("aria-label", fill(STATUS.statusOf || "%(name)s: %(status)s",
        { name: data.name, status: statusLabel(data.status) }));
    }
    updateFacts(data);
    announce(fill(STATUS.statusOf || "%(name)s: %(status)s",
      { name: data.name, status: statusLabel(data.status) }));
  }

  // The detail page's facts list, if this image's is on the page.
  function updateFacts(data) {
    var facts = document.querySelector('[data-image-sync-facts="' + data.id + '"]');
    if (!facts) { return; }
    function field(name, text) {
      var dd = facts.querySelector('[data-image-sync-field="' + name + '"]');
      var dt = facts.querySelector('[data-image-sync-field="' + name + '-label"]');
      if (!dd) { return; }
      dd.textContent = text || "";
      dd.hidden = !text;
      if (dt) { dt.hidden = !text; }
    }
    field("status", statusLabel(data.status));
    field("resized", data.resized_width ? data.resized_width + "×" + data.resized_height : "");
    field("error", data.error || "");
  }

  function followFigures() {
    document.querySelectorAll("img.image-sync-img").forEach(function (img) {
      if (img.style.backgroundImage) { loaded(img); }
    });
    document.querySelectorAll("figure[data-image-sync-poll]").forEach(function (figure) {
      follow(figure.getAttribute("data-image-sync-poll"), function (data) {
        updateFigure(figure, data);
      }, figure.className.indexOf("image-sync-processing") >= 0 ? "processing" : "pending");
    });
  }

  function localTimes() {
    if (!window.Intl || !Intl.DateTimeFormat) { return; }
    var format;
    try {
      format = new Intl.DateTimeFormat(LANG, { dateStyle: "medium", timeStyle: "short" });
    } catch (e) { return; }
    document.querySelectorAll("time[data-image-sync-localtime]").forEach(function (node) {
      var when = new Date(node.getAttribute("datetime"));
      if (!isNaN(when.getTime())) { node.textContent = format.format(when); }
    });
  }

  // ---- the upload form ----------------------------------------------------

  // Sizes as Django's filesizeformat writes them, in the page's language.
  function fileSize(bytes, words) {
    function number(value) {
      try {
        return new Intl.NumberFormat(LANG, { maximumFractionDigits: 1, minimumFractionDigits: 1 })
          .format(value);
      } catch (e) { return value.toFixed(1); }
    }
    var text;
    if (bytes < 1024) {
      text = fill(words.bytes, { size: bytes });
    } else if (bytes < 1024 * 1024) {
      text = words.KB.replace("%s", number(bytes / 1024));
    } else {
      text = words.MB.replace("%s", number(bytes / 1024 / 1024));
    }
    return text.replace(/ /g, "\u00a0");  // as filesizeformat: never split from its unit
  }

  function megapixels(value) {
    try {
      return new Intl.NumberFormat(LANG, { maximumFractionDigits: 1 }).format(value / 1e6);
    } catch (e) { return (value / 1e6).toFixed(1); }
  }

  var SIGNATURES = [
    { name: "JPEG", bytes: [0xff, 0xd8, 0xff] },
    { name: "PNG", bytes: [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a] },
    { name: "GIF", bytes: [0x47, 0x49, 0x46, 0x38] },
    { name: "TIFF", bytes: [0x49, 0x49, 0x2a, 0x00] },
    { name: "TIFF", bytes: [0x4d, 0x4d, 0x00, 0x2a] },
    { name: "BMP", bytes: [0x42, 0x4d] },
    { name: "PDF", bytes: [0x25, 0x50, 0x44, 0x46] }
  ];

  function sniff(bytes) {
    if (bytes.length >= 12 && String.fromCharCode.apply(null, bytes.subarray(0, 4)) === "RIFF" &&
        String.fromCharCode.apply(null, bytes.subarray(8, 12)) === "WEBP") { return "WEBP"; }
    for (var i = 0; i < SIGNATURES.length; i++) {
      var sig = SIGNATURES[i].bytes;
      if (bytes.length < sig.length) { continue; }
      var match = true;
      for (var j = 0; j < sig.length; j++) { if (bytes[j] !== sig[j]) { match = false; break; } }
      if (match) { return SIGNATURES[i].name; }
    }
    return null;
  }

  // Width and height from the header; undefined when not read here (the
  // server decides: a header this reader does not follow is not refused).
  function dimensions(format, bytes) {
    var view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (format === "PNG") {
      if (bytes.length < 24) { return undefined; }
      return { width: view.getUint32(16), height: view.getUint32(20) };
    }
    if (format === "JPEG") {
      var i = 2;
      while (i + 9 < bytes.length) {
        if (bytes[i] !== 0xff) { return undefined; }
        var marker = bytes[i + 1];
        if (marker === 0xff) { i += 1; continue; }
        if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 &&
            marker !== 0xcc) {
          return { height: view.getUint16(i + 5), width: view.getUint16(i + 7) };
        }
        if (marker === 0xd9 || marker === 0xda) { return undefined; }
        if ((marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) { i += 2; continue; }
        i += 2 + view.getUint16(i + 2);
      }
    }
    return undefined;
  }

  function hex(buffer) {
    return Array.prototype.map.call(new Uint8Array(buffer), function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }

  function Uploader(form, config) {
    this.form = form;
    this.config = config;
    this.words = config.strings;
    this.items = [];
    this.input = form.querySelector('input[type="file"]');
    this.submit = form.querySelector('[type="submit"]');
    var token = form.querySelector('input[name="csrfmiddlewaretoken"]');
    this.csrf = token ? token.value : "";
    this.build();
  }

  Uploader.prototype.build = function () {
    var self = this;
    var words = this.words;
    var form = this.form;
    form.classList.add("image-sync-enhanced");
    // The chosen files live in the queue, not in the (emptied) input, so the
    // input's "required" would block every submission.
    form.noValidate = true;
    this.input.tabIndex = -1;  // the button below opens it; one tab stop, not two
    this.input.setAttribute("aria-hidden", "true");

    var zone = element("div", "image-sync-dropzone");
    zone.appendChild(element("p", "image-sync-dropzone-text", words.intro));
    var choose = element("button", "image-sync-choose", words.choose);
    choose.type = "button";
    choose.setAttribute("aria-describedby", this.input.getAttribute("aria-describedby") ||
      (this.input.id + "_helptext"));
    choose.addEventListener("click", function () { self.input.click(); });
    zone.appendChild(choose);

    // Phones: straight to the camera, as a second picker.
    this.camera = element("input");
    this.camera.type = "file";
    this.camera.accept = "image/*";
    this.camera.setAttribute("capture", "environment");
    this.camera.className = "image-sync-visually-hidden";
    this.camera.tabIndex = -1;
    this.camera.setAttribute("aria-hidden", "true");
    var camera = element("button", "image-sync-camera", words.camera);
    camera.type = "button";
    camera.addEventListener("click", function () { self.camera.click(); });
    zone.appendChild(camera);
    zone.appendChild(this.camera);

    var field = form.querySelector(".image-sync-field") || this.input.parentNode;
    field.appendChild(zone);

    this.list = element("ul", "image-sync-queue");
    this.list.setAttribute("aria-label", words.queue);
    this.summary = element("p", "image-sync-summary");
    this.summary.setAttribute("role", "status");
    this.summary.setAttribute("aria-live", "polite");
    form.insertBefore(this.list, this.submit);
    form.insertBefore(this.summary, this.submit);

    [this.input, this.camera].forEach(function (input) {
      input.addEventListener("change", function () {
        self.add(input.files);
        input.value = "";
      });
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      self.send();
    });

    // Drop anywhere on the page; paste anywhere but into a text field.
    var depth = 0;
    function hasFiles(event) {
      var types = event.dataTransfer && event.dataTransfer.types;
      return types && Array.prototype.indexOf.call(types, "Files") >= 0;
    }
    document.addEventListener("dragenter", function (event) {
      if (!hasFiles(event)) { return; }
      depth += 1;
      form.classList.add("image-sync-dragging");
    });
    document.addEventListener("dragleave", function () {
      depth = Math.max(0, depth - 1);
      if (!depth) { form.classList.remove("image-sync-dragging"); }
    });
    document.addEventListener("dragover", function (event) {
      if (!hasFiles(event)) { return; }
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
    });
    document.addEventListener("drop", function (event) {
      if (!hasFiles(event)) { return; }
      event.preventDefault();
      depth = 0;
      form.classList.remove("image-sync-dragging");
      self.add(event.dataTransfer.files);
    });
    document.addEventListener("paste", function (event) {
      var target = event.target;
      if (target && (target.isContentEditable || /^(INPUT|TEXTAREA)$/.test(target.tagName) &&
          target.type !== "file")) { return; }
      var files = event.clipboardData && event.clipboardData.files;
      if (files && files.length) {
        event.preventDefault();
        self.add(files);
      }
    });
  };

  // Files waiting to be sent (those the count limit applies to).
  Uploader.prototype.waiting = function () {
    return this.items.filter(function (item) {
      return ["checking", "ready", "cancelled", "network", "server"].indexOf(item.state) >= 0;
    });
  };

  Uploader.prototype.add = function (files) {
    var self = this;
    Array.prototype.forEach.call(files || [], function (file) {
      var item = self.item(file);
      if (self.waiting().length >= self.config.maxFiles) {
        item.refuse(fill(self.words.too_many, { name: file.name, count: self.config.maxFiles }));
      } else {
        item.check();
      }
      self.list.appendChild(item.node);
    });
    this.refresh();
  };

  Uploader.prototype.item = function (file) {
    var item = new Item(this, file);
    this.items.push(item);
    return item;
  };

  Uploader.prototype.remove = function (item) {
    item.dispose();
    this.items.splice(this.items.indexOf(item), 1);
    item.node.remove();
    this.refresh();
    this.submit.focus();
  };

  Uploader.prototype.sending = function () {
    return this.items.some(function (item) {
      return item.state === "looking" || item.state === "uploading";
    });
  };

  Uploader.prototype.send = function () {
    if (this.sending()) { return; }
    var ready = this.items.filter(function (item) { return item.state === "ready"; });
    if (!ready.length) {
      var checking = this.items.some(function (item) { return item.state === "checking"; });
      if (!checking) { this.summary.textContent = this.words.nothing; }
      this.sendWhenChecked = checking;
      return;
    }
    this.sendWhenChecked = false;
    this.batch = ready;
    ready.forEach(function (item) { item.send(); });
    this.refresh();
  };

  // Called whenever an item changes state.
  Uploader.prototype.refresh = function () {
    var sending = this.sending();
    this.submit.disabled = sending;
    this.list.setAttribute("aria-busy", sending ? "true" : "false");
    this.list.hidden = !this.items.length;
    if (this.sendWhenChecked && !this.items.some(function (i) { return i.state === "checking"; })) {
      this.send();
      return;
    }
    var batch = this.batch || [];
    if (!batch.length || sending) { return; }
    var stored = batch.filter(function (item) { return item.image; });
    var refused = batch.filter(function (item) { return !item.image; });
    var text = fill(this.words.summary, { stored: stored.length, total: batch.length });
    if (refused.length) {
      text += " " + fill(this.words.summary_refused, {
        names: refused.map(function (item) { return item.file.name; }).join(", ")
      });
    }
    this.summary.textContent = text;
  };

  function Item(uploader, file) {
    var words = uploader.words;
    this.uploader = uploader;
    this.file = file;
    this.words = words;
    this.state = "new";
    this.node = element("li", "image-sync-item");
    this.thumb = element("div", "image-sync-thumb");
    this.url = URL.createObjectURL(file);
    var preview = element("img", "image-sync-preview");
    preview.alt = "";
    preview.decoding = "async";
    preview.src = this.url;
    preview.addEventListener("error", function () { preview.hidden = true; });
    this.thumb.appendChild(preview);
    var body = element("div", "image-sync-item-body");
    var heading = element("p", "image-sync-item-heading");
    heading.appendChild(element("span", "image-sync-item-name", file.name));
    heading.appendChild(element("span", "image-sync-item-size", fileSize(file.size, words)));
    body.appendChild(heading);
    this.progress = element("progress", "image-sync-progress");
    this.progress.max = 100;
    this.progress.value = 0;
    this.progress.hidden = true;
    this.progress.setAttribute("aria-label", fill(words.progress, { name: file.name }));
    body.appendChild(this.progress);
    this.message = element("p", "image-sync-item-status");
    body.appendChild(this.message);
    this.actions = element("div", "image-sync-item-actions");
    this.node.appendChild(this.thumb);
    this.node.appendChild(body);
    this.node.appendChild(this.actions);
  }

  Item.prototype.set = function (state, message, buttons) {
    var self = this;
    this.state = state;
    this.node.setAttribute("data-state", state);
    this.message.textContent = message || "";
    this.progress.hidden = state !== "uploading";
    this.actions.textContent = "";
    (buttons || []).forEach(function (kind) {
      var label = { remove: self.words.remove, cancel: self.words.cancel, retry: self.words.retry };
      var button = element("button", "image-sync-" + kind, "");
      button.type = "button";
      button.setAttribute("aria-label", fill(label[kind], { name: self.file.name }));
      button.title = button.getAttribute("aria-label");
      button.appendChild(element("span", "", {
        remove: "×", cancel: "×", retry: "↻"
      }[kind]));
      button.firstChild.setAttribute("aria-hidden", "true");
      button.addEventListener("click", function () { self[kind](); });
      self.actions.appendChild(button);
    });
    this.uploader.refresh();
  };

  Item.prototype.refuse = function (message) {
    this.set("refused", message, ["remove"]);
    this.node.classList.add("image-sync-item-refused");
  };

  // The rule `file` breaks, as a message, or null. `bytes` is the whole file,
  // or null when it was not read (the checks that need no content). These are
  // the server's rules with its settings; the server checks everything again.
  function browserRefusal(file, bytes, config, words) {
    var allowed = config.formats.map(function (f) { return f.name; });
    function problem(text) { return fill(words.problem, { file: file.name, problem: text }); }
    if (!file.size) { return problem(words.empty); }
    if (file.size > config.maxBytes) {
      return problem(fill(words.too_big, {
        size: fileSize(file.size, words), limit: fileSize(config.maxBytes, words)
      }));
    }
    if (!bytes) { return null; }
    var found = sniff(bytes.subarray(0, 16));
    if (!found || allowed.indexOf(found) < 0) {
      return problem(found
        ? fill(words.looks_like, { found: found, allowed: words.allowed })
        : fill(words.format, { allowed: words.allowed }));
    }
    var size = dimensions(found, bytes);
    if (size && size.width * size.height > config.maxPixels) {
      return problem(fill(words.pixels, {
        pixels: megapixels(size.width * size.height),
        width: size.width, height: size.height, limit: megapixels(config.maxPixels)
      }));
    }
    return null;
  }

  // Read the file once: the rules above, then its SHA-256.
  Item.prototype.check = function () {
    var self = this;
    var config = this.uploader.config;
    var words = this.words;
    var file = this.file;
    var refusal = browserRefusal(file, null, config, words);
    if (refusal) { return this.refuse(refusal); }
    this.set("checking", words.checking, ["remove"]);
    file.arrayBuffer().then(function (buffer) {
      if (self.state !== "checking") { return null; }
      var refusal = browserRefusal(file, new Uint8Array(buffer), config, words);
      if (refusal) { return self.refuse(refusal); }
      var subtle = window.crypto && window.crypto.subtle;
      if (!subtle) { return self.ready(); }  // not a secure context: the server decides
      return subtle.digest("SHA-256", buffer).then(function (digest) {
        if (self.state !== "checking") { return; }
        self.sha256 = hex(digest);
        var twin = self.uploader.items.filter(function (other) {
          return other !== self && other.sha256 === self.sha256 && other.state !== "refused";
        })[0];
        if (twin) {
          return self.refuse(fill(words.same, { name: file.name, other: twin.file.name }));
        }
        self.ready();
      }, function () { self.ready(); });
    }).catch(function () {
      if (self.state === "checking") { self.ready(); }  // unreadable here: the server decides
    });
  };

  Item.prototype.ready = function () {
    this.set("ready", this.words.ready, ["remove"]);
  };

  Item.prototype.remove = function () {
    this.uploader.remove(this);
  };

  Item.prototype.cancel = function () {
    if (this.request) { this.request.abort(); }
    this.cancelled = true;
    this.set("cancelled", this.words.cancelled, ["retry", "remove"]);
  };

  Item.prototype.retry = function () {
    this.uploader.batch = [this];
    this.send();
  };

  Item.prototype.dispose = function () {
    if (this.request) { this.request.abort(); }
    URL.revokeObjectURL(this.url);
  };

  // Ask whether the uploader already has these bytes; send them if not.
  Item.prototype.send = function () {
    var self = this;
    var config = this.uploader.config;
    this.cancelled = false;
    if (!this.sha256) { return this.upload(); }
    this.set("looking", this.words.checking, ["cancel"]);
    var url = config.lookup + "?sha256=" + this.sha256;
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (self.cancelled) { return; }
        if (response.status === 200) {
          return response.json().then(function (data) { self.stored(data, true); });
        }
        self.upload();
      })
      .catch(function () { if (!self.cancelled) { self.upload(); } });
  };

  Item.prototype.upload = function () {
    var self = this;
    var words = this.words;
    var body = new FormData();
    body.append("images", this.file, this.file.name);
    var request = new XMLHttpRequest();
    this.request = request;
    request.open("POST", this.uploader.config.api);
    request.setRequestHeader("Accept", "application/json");
    request.setRequestHeader("X-CSRFToken", this.uploader.csrf);
    request.upload.addEventListener("progress", function (event) {
      if (!event.lengthComputable) { return; }
      var percent = Math.round(event.loaded / event.total * 100);
      self.progress.value = percent;
      self.message.textContent = fill(words.uploading, { percent: percent + "%" });
    });
    request.addEventListener("load", function () {
      self.request = null;
      var data = null;
      try { data = JSON.parse(request.responseText); } catch (e) { data = null; }
      if ((request.status === 200 || request.status === 201) && data && data.images) {
        return self.stored(data.images[0], data.images[0].duplicate);
      }
      var errors = data && data.errors ? [].concat(data.errors.images || [], data.errors.__all__ || []) : [];
      if (errors.length && request.status < 500) {
        return self.set("rejected", errors.map(function (e) { return e.message; }).join(" "),
          ["remove"]);
      }
      self.set("server", fill(words.server, { status: request.status }), ["retry", "remove"]);
    });
    request.addEventListener("error", function () {
      self.request = null;
      self.set("network", words.network, ["retry", "remove"]);
    });
    request.addEventListener("abort", function () { self.request = null; });
    this.progress.value = 0;
    this.set("uploading", fill(words.uploading, { percent: "0%" }), ["cancel"]);
    announce(fill(words.progress, { name: this.file.name }));
    request.send(body);
  };

  // The server has the image (new or already there): follow it until done.
  Item.prototype.stored = function (data, duplicate) {
    var self = this;
    var config = this.uploader.config;
    this.image = data;
    var link = element("a", "image-sync-item-link");
    link.href = config.detail.replace(config.marker, data.id);
    link.textContent = this.file.name;
    var name = this.node.querySelector(".image-sync-item-name");
    name.textContent = "";
    name.appendChild(link);
    this.duplicate = duplicate;
    this.show(data);
    if (data.status === "done" || data.status === "failed") { return; }
    follow(config.apiDetail.replace(config.marker, data.id), function (next) {
      self.show(next);
    }, data.status);
  };

  Item.prototype.show = function (data) {
    var words = this.words;
    var text;
    if (data.status === "done") {
      text = this.duplicate ? words.duplicate
        : fill(words.done, { width: data.resized_width, height: data.resized_height });
      if (data.resized_url) {
        // Same slot, same size: the preview gives way to the resized image.
        this.thumb.textContent = "";
        this.thumb.appendChild(pictureFor(data, "96px"));
        URL.revokeObjectURL(this.url);
      }
    } else if (data.status === "failed") {
      text = fill(words.failed, { error: data.error || "" });
    } else {
      text = this.duplicate ? words.duplicate : words[data.status];
    }
    this.set(this.duplicate ? "duplicate" : data.status, text, []);
    announce(this.file.name + ": " + text);
  };

  function enhanceForms() {
    document.querySelectorAll("form[data-image-sync-upload]").forEach(function (form) {
      var config = readJSON(form.getAttribute("data-image-sync-upload"));
      if (!config || !form.querySelector('input[type="file"]') || !window.FormData ||
          !window.XMLHttpRequest || !window.fetch || !Blob.prototype.arrayBuffer) { return; }
      new Uploader(form, config);
    });
  }

  followFigures();
  localTimes();
  enhanceForms();
})();
