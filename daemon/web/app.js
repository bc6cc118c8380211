// lensd web page: lists the streams (GET /api/v1/streams, every 2 s), shows
// each one's latest overlay (snapshot.jpg with boxes, fetched again when an
// event says there is a newer frame) and a detections table fed by
// Server-Sent Events (/events). With a token, open the page as /?token=T:
// the token is passed on as ?token= (EventSource and <img> cannot set an
// Authorization header).
'use strict';

const token = new URLSearchParams(location.search).get('token');
const sections = new Map();  // name -> {section, source, img, loading, wanted}

function apiUrl(path, params) {
  const url = new URL(path, location.href);
  for (const [k, v] of Object.entries(params || {}))
    url.searchParams.set(k, v);
  if (token)
    url.searchParams.set('token', token);
  return url.toString();
}

function streamPath(name, tail) {
  return '/api/v1/streams/' + encodeURIComponent(name) + (tail || '');
}

function showError(text) {
  const el = document.getElementById('error');
  el.textContent = text || '';
  el.hidden = !text;
}

function element(tag, attrs, text) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {}))
    el.setAttribute(k, v);
  if (text !== undefined)
    el.textContent = text;
  return el;
}

// Loads the newest snapshot, one request at a time. Through fetch, since an
// <img> given the same URL again would not reload it (and the API refuses
// unknown query parameters, so no cache-buster either).
async function refreshImage(entry, seq) {
  entry.wanted = Math.max(entry.wanted, seq);
  if (entry.loading || entry.shown >= entry.wanted)
    return;
  entry.loading = true;
  const target = entry.wanted;
  try {
    const response = await fetch(apiUrl(streamPath(entry.name, '/snapshot.jpg'),
        {overlay: 'boxes'}), {cache: 'no-store'});
    if (response.ok) {
      const url = URL.createObjectURL(await response.blob());
      if (entry.objectUrl)
        URL.revokeObjectURL(entry.objectUrl);
      entry.objectUrl = url;
      entry.img.src = url;
      entry.section.dataset.imageSeq = response.headers.get('X-Lensd-Seq') || '';
    }
  } catch (e) {
    // the stream may be gone; the next listing says so
  }
  entry.shown = target;
  entry.loading = false;
  if (entry.wanted > entry.shown && sections.get(entry.name) === entry)
    setTimeout(() => refreshImage(entry, entry.wanted), 100);
}

function showDetections(entry, doc) {
  const body = entry.section.querySelector('table.detections tbody');
  const rows = (doc.detections || []).map((d) => {
    const tr = element('tr', {class: 'detection'});
    tr.append(element('td', {}, d.label || String(d.class_id)),
        element('td', {}, Number(d.score || 0).toFixed(2)),
        element('td', {}, d.box ? `${d.box.x},${d.box.y} ${d.box.w}×${d.box.h}` : ''));
    return tr;
  });
  body.replaceChildren(...rows);
  entry.section.dataset.seq = String(doc.seq);
  const n = (doc.detections || []).length;
  entry.section.querySelector('.meta .seq').textContent =
      `frame ${doc.seq}, ${n} detection${n === 1 ? '' : 's'}, ` +
      `${Number(doc.inference_ms || 0).toFixed(1)} ms`;
  const count = Number(document.body.dataset.sseEvents || '0') + 1;
  document.body.dataset.sseEvents = String(count);
}

function addStream(stream) {
  const section = element('section', {class: 'stream', 'data-stream': stream.name,
                                      id: 'stream-' + stream.name});
  const title = element('h2');
  title.append(element('span', {class: 'name'}, stream.name),
      element('span', {class: 'state'}, stream.state));
  const img = element('img', {class: 'overlay', alt: stream.name + ' overlay'});
  const meta = element('div', {class: 'meta'});
  meta.append(element('span', {class: 'fps'}), ' · ', element('span', {class: 'seq'}));
  const table = element('table', {class: 'detections'});
  const head = element('tr');
  head.append(element('th', {}, 'label'), element('th', {}, 'score'),
      element('th', {}, 'box'));
  table.append(element('thead'), element('tbody'));
  table.tHead.append(head);
  section.append(title, img, meta, table);
  document.getElementById('streams').append(section);

  const entry = {name: stream.name, section, img, loading: false, wanted: 0, shown: 0};
  entry.source = new EventSource(apiUrl(streamPath(stream.name, '/events')));
  entry.source.addEventListener('detections', (ev) => {
    const doc = JSON.parse(ev.data);
    showDetections(entry, doc);
    refreshImage(entry, doc.seq);
  });
  entry.source.addEventListener('removed', () => removeStream(stream.name));
  sections.set(stream.name, entry);
  if (stream.seq > 0)
    refreshImage(entry, stream.seq);
  return entry;
}

function removeStream(name) {
  const entry = sections.get(name);
  if (!entry)
    return;
  entry.source.close();
  if (entry.objectUrl)
    URL.revokeObjectURL(entry.objectUrl);
  entry.section.remove();
  sections.delete(name);
}

function updateStream(entry, stream) {
  const badge = entry.section.querySelector('.state');
  badge.textContent = stream.state;
  badge.className = 'state state-' + stream.state;
  entry.section.dataset.state = stream.state;
  entry.section.querySelector('.meta .fps').textContent =
      `${Number(stream.fps_in || 0).toFixed(1)} fps in, ` +
      `${Number(stream.fps_out || 0).toFixed(1)} fps out`;
}

async function refreshStreams() {
  try {
    const response = await fetch(apiUrl('/api/v1/streams'));
    if (!response.ok) {
      const doc = await response.json().catch(() => ({}));
      throw new Error(`${response.status} ${doc.detail || response.statusText}`);
    }
    const doc = await response.json();
    const names = new Set();
    for (const stream of doc.streams) {
      names.add(stream.name);
      updateStream(sections.get(stream.name) || addStream(stream), stream);
    }
    for (const name of [...sections.keys()])
      if (!names.has(name))
        removeStream(name);
    document.getElementById('no-streams').hidden = doc.streams.length > 0;
    showError('');
  } catch (e) {
    showError('streams: ' + e.message);
  }
}

async function showInfo() {
  try {
    const response = await fetch(apiUrl('/api/v1/info'));
    const doc = await response.json();
    const model = doc.model && doc.model.name ? doc.model.name : 'motion';
    document.getElementById('info').textContent = `${doc.version}, ${model}`;
  } catch (e) {
    showError('info: ' + e.message);
  }
}

showInfo();
refreshStreams();
setInterval(refreshStreams, 2000);
