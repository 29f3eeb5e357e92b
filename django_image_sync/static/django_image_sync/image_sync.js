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
    return String(template).replace(/%\((\w+)\)[sd]/g, function (all, key) {
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
        .then(function (response) {
          if (response.ok) { return response.json(); }
          // Gone, or no longer visible: stop. A 5xx (a deploy, a restart): ask again later.
          return [401, 403, 404, 410].indexOf(response.status) >= 0 ? null : undefined;
        })
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
    var errorLabel = facts.querySelector('[data-image-sync-field="error-label"]');
    if (errorLabel) {
      errorLabel.textContent = data.status === "failed" ? (STATUS.errorLabel || "Error")
        : (STATUS.lastTryLabel || "Last try");
    }
    // The next try is over once the image is no longer waiting for it.
    if (data.status !== "pending") {
      facts.querySelectorAll('[data-image-sync-field^="next-try"]').forEach(function (node) {
        node.hidden = true;
      });
    }
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

  // Python's round(value, digits): ties go to the even neighbour.
  function roundEven(value, digits) {
    var scale = Math.pow(10, digits);
    var scaled = value * scale;
    var floor = Math.floor(scaled);
    var rest = scaled - floor;
    var whole = rest > 0.5 || (rest === 0.5 && floor % 2 === 1) ? floor + 1 : floor;
    return whole / scale;
  }

  // `value` with exactly `digits` decimals in the page's language, no grouping
  // (as Django's number_format without USE_THOUSAND_SEPARATOR).
  function decimal(value, digits, grouping) {
    try {
      return new Intl.NumberFormat(LANG, {
        minimumFractionDigits: digits, maximumFractionDigits: digits, useGrouping: !!grouping
      }).format(value);
    } catch (e) { return value.toFixed(digits); }
  }

  // Sizes as Django's filesizeformat writes them, in the page's language.
  function fileSize(bytes, words) {
    var units = [["KB", 1024], ["MB", 1024 * 1024], ["GB", 1024 * 1024 * 1024]];
    var text = fill(bytes === 1 ? words.byte : words.bytes, { size: bytes });
    units.forEach(function (unit) {
      if (bytes >= unit[1]) {
        text = words[unit[0]].replace("%s", decimal(roundEven(bytes / unit[1], 1), 1));
      }
    });
    return text.replace(/ /g, "\u00a0");  // as filesizeformat: never split from its unit
  }

  // Megapixels as the server words them (wording.megapixels): whole from 10,
  // one decimal from 1, two significant digits below.
  function naturalDecimals(value) {
    if (value >= 10) { return 0; }
    if (value >= 1) { return 1; }
    return 1 - Math.floor(Math.log(Math.max(value, 1e-6)) / Math.LN10);
  }

  function megapixels(pixels, digits) {
    var value = pixels / 1e6;
    if (digits === undefined) { digits = naturalDecimals(value); }
    return decimal(roundEven(value, digits), digits, true);
  }

  // A pixel count just over the limit gets the decimals that show it is over.
  function overLimit(pixels, limit) {
    var shownLimit = roundEven(limit / 1e6, naturalDecimals(limit / 1e6));
    var digits = naturalDecimals(pixels / 1e6);
    while (roundEven(pixels / 1e6, digits) <= shownLimit && digits < 6) { digits += 1; }
    return megapixels(pixels, digits);
  }

  function ascii(bytes, start, end) {
    return String.fromCharCode.apply(null, bytes.subarray(start, end));
  }

  // The server's names for what a file looks like (processing.sniff_format).
  var SIGNATURES = [
    ["GIF", "GIF87a"], ["GIF", "GIF89a"], ["TIFF", "II*\u0000"], ["TIFF", "MM\u0000*"],
    ["BMP", "BM"], ["PSD", "8BPS"], ["PDF", "%PDF"], ["ICO", "\u0000\u0000\u0001\u0000"],
    ["PNG", "\u0089PNG\r\n\u001a\n"], ["JPEG", "\u00ff\u00d8\u00ff"]
  ];

  function sniff(bytes) {
    var head = ascii(bytes, 0, 16);
    for (var i = 0; i < SIGNATURES.length; i++) {
      if (head.indexOf(SIGNATURES[i][1]) === 0) { return SIGNATURES[i][0]; }
    }
    if (head.slice(0, 4) === "RIFF" && head.slice(8, 12) === "WEBP") { return "WEBP"; }
    var text = ascii(bytes, 0, 64).replace(/^\s+/, "").toLowerCase();
    if (text.indexOf("<svg") === 0 || text.indexOf("<?xml") === 0) { return "SVG"; }
    if (text.indexOf("<!doctype html") === 0 || text.indexOf("<html") === 0) { return "HTML"; }
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
    this.choose = choose;

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

  // States of a file that count against MAX_FILES: being checked, ready, being
  // sent, or waiting for a retry. The first MAX_FILES of them in the list's
  // order take part; a file past them waits ("over_limit") until one leaves.
  var COUNTED = ["checking", "ready", "looking", "uploading", "cancelled", "network", "server"];

  Uploader.prototype.add = function (files) {
    var self = this;
    Array.prototype.forEach.call(files || [], function (file) {
      var item = new Item(self, file);
      self.items.push(item);
      self.list.appendChild(item.node);
      item.check();
    });
    this.refresh();
  };

  // Apply the count limit in the list's order.
  Uploader.prototype.recount = function () {
    var max = this.config.maxFiles;
    var taken = 0;
    this.items.forEach(function (item) {
      if (item.passed && (item.state === "ready" || item.state === "over_limit")) {
        if (taken < max) {
          if (item.state === "over_limit") { item.ready(); }
          taken += 1;
        } else if (item.state !== "over_limit") {
          item.set("over_limit", fill(item.words.too_many,
            { name: item.file.name, count: max }), ["remove"]);
          announce(item.message.textContent);
        }
      } else if (COUNTED.indexOf(item.state) >= 0) {
        taken += 1;
      }
    });
  };

  // Where the focus goes when `item`'s buttons go away: the next file's
  // button, else the previous one's, else the "Choose images" button.
  Uploader.prototype.focusAfter = function (item) {
    var index = this.items.indexOf(item);
    var order = this.items.slice(index + 1).concat(this.items.slice(0, index).reverse());
    for (var i = 0; i < order.length; i++) {
      var button = order[i].actions.querySelector("button");
      if (button) { button.focus(); return; }
    }
    this.choose.focus();
  };

  Uploader.prototype.remove = function (item) {
    var focused = item.node.contains(document.activeElement);
    if (focused) { this.focusAfter(item); }
    item.dispose();
    this.items.splice(this.items.indexOf(item), 1);
    item.node.remove();
    this.refresh();
  };

  Uploader.prototype.sending = function () {
    return this.items.some(function (item) {
      return item.state === "looking" || item.state === "uploading";
    });
  };

  Uploader.prototype.send = function () {
    if (this.sending()) { return; }  // the button says so (aria-disabled)
    var checking = this.items.some(function (item) { return item.state === "checking"; });
    var ready = this.items.filter(function (item) { return item.state === "ready"; });
    // Files still being checked are sent as soon as they are ready.
    this.sendWhenChecked = checking;
    if (!ready.length) {
      if (!checking) { this.summary.textContent = this.words.nothing; }
      return;
    }
    this.summary.textContent = "";
    this.batch = ready;
    this.reported = false;
    ready.forEach(function (item) { item.send(); });
    this.refresh();
  };

  // After every change of a file's state.
  Uploader.prototype.refresh = function () {
    if (this.refreshing) { return; }
    this.refreshing = true;
    try {
      this.recount();
    } finally {
      this.refreshing = false;
    }
    var sending = this.sending();
    // Not "disabled": the button keeps the focus of whoever pressed it.
    this.submit.setAttribute("aria-disabled", sending ? "true" : "false");
    this.list.setAttribute("aria-busy", sending ? "true" : "false");
    this.list.hidden = !this.items.length;
    var checking = this.items.some(function (i) { return i.state === "checking"; });
    if (this.sendWhenChecked && !checking && !sending) {
      this.send();
      return;
    }
    this.report();
  };

  // Once a batch has been sent: which files were uploaded and which were not.
  Uploader.prototype.report = function () {
    var batch = this.batch || [];
    if (!batch.length || this.reported || this.sending()) { return; }
    var stored = batch.filter(function (item) { return item.image; });
    var refused = batch.filter(function (item) { return !item.image; });
    var text = fill(this.words.summary, { stored: stored.length, total: batch.length });
    if (refused.length) {
      text += " " + fill(this.words.summary_refused, {
        names: refused.map(function (item) { return item.file.name; }).join(", ")
      });
    }
    this.reported = true;
    this.summary.textContent = text;
  };

  function Item(uploader, file) {
    var words = uploader.words;
    this.uploader = uploader;
    this.file = file;
    this.words = words;
    this.state = "new";
    this.attempt = 0;
    this.node = element("li", "image-sync-item");
    this.thumb = element("div", "image-sync-thumb");
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

  Item.prototype.preview = function () {
    this.url = URL.createObjectURL(this.file);
    var preview = element("img", "image-sync-preview");
    preview.alt = "";
    preview.decoding = "async";
    preview.src = this.url;
    preview.addEventListener("error", function () { preview.hidden = true; });
    this.thumb.appendChild(preview);
  };

  Item.prototype.set = function (state, message, buttons) {
    var self = this;
    var hadFocus = this.actions.contains(document.activeElement);
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
    if (hadFocus) {
      // The pressed button is gone: its successor (Retry after Cancel) or the next file.
      if (this.actions.firstChild) { this.actions.firstChild.focus(); }
      else { this.uploader.focusAfter(this); }
    }
    this.uploader.refresh();
  };

  // Say `text` about this file in the live region ("name: text", translated).
  Item.prototype.announce = function (text) {
    announce(fill(this.words.problem, { file: this.file.name, problem: text }));
  };

  // Refused for good (by the browser's checks or the server): announced.
  Item.prototype.refuse = function (message, state) {
    this.set(state || "refused", message, ["remove"]);
    announce(message);
  };

  // The rule `file` breaks, as a message, or null. `bytes` is the whole file,
  // or null when it was not read (the checks that need no content). These are
  // the server's rules with its settings; the server checks everything again.
  function browserRefusal(file, bytes, config, words) {
    var allowed = config.formats.map(function (f) { return f.name; });
    function problem(text) { return fill(words.problem, { file: file.name, problem: text }); }
    if (!file.size) { return problem(words.empty); }
    if (file.size > config.maxBytes) {
      var size = fileSize(file.size, words);
      var limit = fileSize(config.maxBytes, words);
      return problem(size === limit ? fill(words.just_over, { limit: limit })
        : fill(words.too_big, { size: size, limit: limit }));
    }
    if (!bytes) { return null; }
    var found = sniff(bytes);
    if (!found || allowed.indexOf(found) < 0) {
      return problem(found
        ? fill(words.looks_like, { found: found, allowed: words.allowed })
        : fill(words.format, { allowed: words.allowed }));
    }
    var box = dimensions(found, bytes);
    if (box && box.width * box.height > config.maxPixels) {
      return problem(fill(words.pixels, {
        pixels: overLimit(box.width * box.height, config.maxPixels),
        width: box.width, height: box.height, limit: megapixels(config.maxPixels)
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
    if (refusal) { return this.refuse(refusal); }  // no preview: not worth decoding
    this.preview();
    this.set("checking", words.checking, ["remove"]);
    file.arrayBuffer().then(function (buffer) {
      if (self.state !== "checking") { return null; }
      var refusal = browserRefusal(file, new Uint8Array(buffer), config, words);
      if (refusal) { return self.refuse(refusal); }
      var subtle = window.crypto && window.crypto.subtle;
      if (!subtle) { return self.checked(); }  // not a secure context: the server decides
      return subtle.digest("SHA-256", buffer).then(function (digest) {
        if (self.state !== "checking") { return; }
        self.sha256 = hex(digest);
        var twin = self.uploader.items.filter(function (other) {
          return other !== self && other.sha256 === self.sha256 && other.state !== "refused";
        })[0];
        if (twin) {
          return self.refuse(fill(words.same, { name: file.name, other: twin.file.name }));
        }
        self.checked();
      }, function () { self.checked(); });
    }).catch(function () {
      if (self.state === "checking") { self.checked(); }  // unreadable here: the server decides
    });
  };

  Item.prototype.checked = function () {
    this.passed = true;
    this.ready();
  };

  Item.prototype.ready = function () {
    this.set("ready", this.words.ready, ["remove"]);
  };

  Item.prototype.remove = function () {
    this.uploader.remove(this);
  };

  Item.prototype.cancel = function () {
    this.attempt += 1;  // whatever the running attempt answers is ignored
    if (this.request) { this.request.abort(); }
    this.set("cancelled", this.words.cancelled, ["retry", "remove"]);
  };

  Item.prototype.retry = function () {
    var uploader = this.uploader;
    if (!uploader.batch || uploader.reported) {
      uploader.batch = [];
      uploader.reported = false;
      uploader.summary.textContent = "";
    }
    if (uploader.batch.indexOf(this) < 0) { uploader.batch.push(this); }
    this.send();
  };

  Item.prototype.dispose = function () {
    this.attempt += 1;
    this.state = "removed";
    if (this.request) { this.request.abort(); }
    if (this.url) { URL.revokeObjectURL(this.url); }
  };

  // Ask whether the uploader already has these bytes; send them if not.
  Item.prototype.send = function () {
    var self = this;
    var config = this.uploader.config;
    var attempt = ++this.attempt;
    if (!this.sha256) { return this.upload(attempt); }
    this.set("looking", this.words.checking, ["cancel"]);
    var url = config.lookup + "?sha256=" + this.sha256;
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (attempt !== self.attempt) { return; }  // cancelled or removed meanwhile
        if (response.status === 200) {
          return response.json().then(function (data) {
            if (attempt === self.attempt) { self.stored(data, true); }
          });
        }
        self.upload(attempt);
      })
      .catch(function () { if (attempt === self.attempt) { self.upload(attempt); } });
  };

  Item.prototype.upload = function (attempt) {
    var self = this;
    var words = this.words;
    var uploader = this.uploader;
    var body = new FormData();
    body.append("csrfmiddlewaretoken", uploader.csrf);
    body.append("images", this.file, this.file.name);
    var request = new XMLHttpRequest();
    this.request = request;
    request.open("POST", uploader.config.api);
    request.setRequestHeader("Accept", "application/json");
    request.setRequestHeader("X-CSRFToken", uploader.csrf);
    request.upload.addEventListener("progress", function (event) {
      if (!event.lengthComputable || attempt !== self.attempt) { return; }
      var percent = Math.round(event.loaded / event.total * 100);
      self.progress.value = percent;
      self.message.textContent = fill(words.uploading, { percent: percent + "%" });
    });
    request.addEventListener("load", function () {
      if (attempt !== self.attempt) { return; }
      self.request = null;
      var data = null;
      try { data = JSON.parse(request.responseText); } catch (e) { data = null; }
      if ((request.status === 200 || request.status === 201) && data && data.images) {
        return self.stored(data.images[0], data.images[0].duplicate);
      }
      var errors = data && data.errors
        ? [].concat(data.errors.images || [], data.errors.__all__ || []) : [];
      if (errors.length && request.status < 500) {
        return self.refuse(errors.map(function (e) { return e.message; }).join(" "), "rejected");
      }
      // A 5xx: the server's own words if it gave some (503 storage_unavailable), and a retry.
      var text = errors.length ? errors.map(function (e) { return e.message; }).join(" ")
        : fill(words.server, { status: request.status });
      self.set("server", text, ["retry", "remove"]);
      self.announce(text);
    });
    request.addEventListener("error", function () {
      if (attempt !== self.attempt) { return; }
      self.request = null;
      self.set("network", words.network, ["retry", "remove"]);
      self.announce(words.network);
    });
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
      if (self.state !== "removed") { self.show(next); }
    }, data.status);
  };

  Item.prototype.show = function (data) {
    var words = this.words;
    var text;
    var state = this.duplicate ? "duplicate" : data.status;
    if (data.status === "done") {
      text = this.duplicate ? words.duplicate
        : fill(words.done, { width: data.resized_width, height: data.resized_height });
      if (data.resized_url) {
        // Same slot, same size: the preview gives way to the resized image.
        var slot = (this.thumb.clientWidth || 96) + "px";
        this.thumb.textContent = "";
        this.thumb.appendChild(pictureFor(data, slot));
        if (this.url) { URL.revokeObjectURL(this.url); }
      }
    } else if (data.status === "failed") {
      state = "failed";  // a duplicate of a failed image is shown as failed, not as done
      text = fill(words.failed, { error: data.error || "" });
    } else {
      text = this.duplicate ? words.duplicate : words[data.status];
    }
    this.set(state, text, []);
    this.announce(text);
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
