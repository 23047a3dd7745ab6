// Attachments: the bytes are fetched with the bearer token (an <img src> to
// the API would carry none) and shown from blob: URLs, cached per id.

import { api } from "./api.js";
import { h, icon } from "./dom.js";
import { formatSize } from "./format.js";

const blobUrls = new Map(); // attachment id -> Promise<string>
const MAX_CACHED = 200;

/** Seeds the cache with a file this device just uploaded, so its echo shows at once. */
export function rememberLocalFile(attachmentId, file) {
  blobUrls.set(attachmentId, Promise.resolve(URL.createObjectURL(file)));
}

function blobUrl(attachmentId) {
  let url = blobUrls.get(attachmentId);
  if (!url) {
    url = api
      .attachment(attachmentId)
      .then((response) => response.blob())
      .then((blob) => URL.createObjectURL(blob));
    url.catch(() => blobUrls.delete(attachmentId));
    blobUrls.set(attachmentId, url);
    if (blobUrls.size > MAX_CACHED) {
      const [oldest] = blobUrls.keys();
      blobUrls.get(oldest).then((old) => URL.revokeObjectURL(old), () => {});
      blobUrls.delete(oldest);
    }
  }
  return url;
}

export function isImage(attachment) {
  return /^image\/(png|jpe?g|gif|webp|avif|bmp)$/i.test(attachment.content_type || "");
}

function isPlayable(attachment) {
  return /^(audio|video)\//i.test(attachment.content_type || "");
}

/** An inline image, an audio or video player, or a download link, for one attachment. */
export function renderAttachment(attachment, { onImageLoad } = {}) {
  if (isPlayable(attachment)) {
    const video = attachment.content_type.toLowerCase().startsWith("video/");
    const player = h(video ? "video" : "audio", {
      controls: true,
      preload: "metadata",
      class: video ? "attachment-video" : "attachment-audio",
      testid: "attachment-player",
      "aria-label": attachment.name,
    });
    blobUrl(attachment.id).then(
      (url) => {
        player.src = url;
        if (video) player.addEventListener("loadedmetadata", () => onImageLoad?.(), { once: true });
      },
      () => player.replaceWith(h("span", { class: "attachment-media failed" }, `${attachment.name} could not be loaded`)),
    );
    return h("div", { class: "attachment-playable" }, player, downloadLink(attachment));
  }
  if (isImage(attachment)) {
    const img = h("img", {
      alt: attachment.name,
      class: "attachment-image",
      testid: "attachment-image",
      decoding: "async",
    });
    const link = h(
      "a",
      { class: "attachment-media loading", title: attachment.name, target: "_blank", rel: "noopener" },
      img,
    );
    blobUrl(attachment.id).then(
      (url) => {
        img.addEventListener(
          "load",
          () => {
            link.classList.remove("loading");
            onImageLoad?.();
          },
          { once: true },
        );
        img.src = url;
        link.href = url;
      },
      () => {
        link.classList.remove("loading");
        link.classList.add("failed");
        link.replaceChildren(icon("alert"), ` ${attachment.name} could not be loaded`);
      },
    );
    return link;
  }
  return downloadLink(attachment);
}

/** A download link whose href becomes a blob: URL, fetched with the token, on first use. */
function downloadLink(attachment) {
  const link = h(
    "a",
    {
      href: "#",
      download: attachment.name,
      class: "attachment-file",
      testid: "attachment-file",
      title: `Download ${attachment.name}`,
    },
    h("span", { class: "file-icon" }, icon("file", { size: 22 })),
    h(
      "span",
      { class: "file-text" },
      h("span", { class: "file-name" }, attachment.name),
      h("span", { class: "file-size" }, formatSize(attachment.size)),
    ),
  );
  link.addEventListener("click", async (event) => {
    event.stopPropagation();
    if (link.dataset.ready) return; // the browser downloads the blob
    event.preventDefault();
    if (link.getAttribute("aria-busy")) return;
    link.setAttribute("aria-busy", "true");
    try {
      link.href = await blobUrl(attachment.id);
      link.dataset.ready = "true";
      link.click();
    } catch (error) {
      link.title = `Could not download: ${error.message}`;
      link.classList.add("failed");
    } finally {
      link.removeAttribute("aria-busy");
    }
  });
  return link;
}
