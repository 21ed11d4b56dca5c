// End-to-end test of `pcavs ui` in headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core).
//
// The server must already be running (tests/test_ui.py::test_ui_end_to_end starts it with a small model and
// its own example inputs, then runs this script). Steps, each with a bounded wait:
//   1. load the page; screenshot 01-page.png
//   2. click the built-in example (it fills the inputs and starts a generation); the face preview appears
//      and the progress bar moves; screenshot 02-generating.png
//   3. the result video: playable, duration ~ the audio's, downloadable; screenshot 03-result.png
//   4. upload a photo without a face: a readable message under the preview (04-no-face.png), and another
//      after pressing Generate (05-no-face-generate.png); never a traceback
//   5. the server still answers: a new photo gets a new preview
// Also: no request leaves 127.0.0.1 (no CDN, fonts or telemetry).
// Prints one line `RESULT {json}` and exits 0 on success, 1 on failure (screenshot 99-failure.png).
//
// usage: node tests/ui/ui_e2e.mjs --url http://127.0.0.1:PORT/ --noface NOFACE.png --face FACE.png
//                                 --audio-seconds 1.0 [--shots /tmp/ui-shots] [--chromium /usr/bin/chromium]
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { chromium } from 'playwright-core';

const { values: opt } = parseArgs({
  options: {
    url: { type: 'string' },
    noface: { type: 'string' },
    face: { type: 'string' },
    'audio-seconds': { type: 'string' },
    shots: { type: 'string', default: '/tmp/ui-shots' },
    chromium: { type: 'string', default: '/usr/bin/chromium' },
    'generate-timeout-s': { type: 'string', default: '300' },
  },
});
for (const key of ['url', 'noface', 'face', 'audio-seconds']) {
  if (!opt[key]) {
    console.error(`missing --${key}`);
    process.exit(2);
  }
}
const audioSeconds = Number(opt['audio-seconds']);
const generateTimeout = Number(opt['generate-timeout-s']) * 1000;
mkdirSync(opt.shots, { recursive: true });

const result = { steps: [], progress: [], external_requests: [], console_errors: [] };
const t0 = Date.now();
const step = (name) => {
  result.steps.push({ name, t: (Date.now() - t0) / 1000 });
  console.error(`[${((Date.now() - t0) / 1000).toFixed(1)} s] ${name}`);
};
const check = (ok, message) => {
  if (!ok) throw new Error(message);
};

const browser = await chromium.launch({
  executablePath: opt.chromium,
  headless: true,
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
const page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
page.setDefaultTimeout(30_000);
page.on('request', (req) => {
  const u = new URL(req.url());
  if (['http:', 'https:', 'ws:', 'wss:'].includes(u.protocol) && !['127.0.0.1', 'localhost'].includes(u.hostname)) {
    result.external_requests.push(req.url());
  }
});
page.on('console', (msg) => {
  if (msg.type() === 'error') result.console_errors.push(msg.text().slice(0, 300));
});

const text = async (selector) => (await page.locator(selector).textContent()) ?? '';
const shot = async (name) => page.screenshot({ path: join(opt.shots, name), fullPage: true });

/** Wait until `#gen-status` (or another selector) holds a text matching `re`; returns the text. */
async function waitForText(selector, re, timeout) {
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    const t = await text(selector);
    if (re.test(t)) return t;
    await page.waitForTimeout(250);
  }
  throw new Error(`timed out after ${timeout / 1000} s waiting for ${re} in ${selector}; it shows: ${await text(selector)}`);
}

let exitCode = 0;
try {
  // 1. the page
  await page.goto(opt.url, { waitUntil: 'networkidle', timeout: 60_000 });
  await page.locator('#generate').waitFor({ state: 'visible' });
  await shot('01-page.png');
  step('page loaded');

  // 2. one click on the built-in example: inputs filled, preview drawn, generation running
  await page.locator('#examples button.gallery-item').first().click();
  await page.locator('#photo img').waitFor({ state: 'visible' });
  step('example loaded');
  const deadline = Date.now() + generateTimeout;
  let previewSeen = false;
  let midShot = false;
  let status = '';
  while (Date.now() < deadline) {
    const progress = await page.evaluate(() => {
      const el = document.querySelector('#result [data-testid=status-tracker]');
      return el ? el.innerText.replace(/\s+/g, ' ').trim() : '';
    });
    if (progress && result.progress.at(-1) !== progress) result.progress.push(progress);
    previewSeen ||= await page.locator('#preview img').isVisible();
    if (previewSeen && !midShot && /frame/.test(progress)) {
      await shot('02-generating.png'); // preview shown, progress bar counting frames
      midShot = true;
    }
    status = await text('#gen-status');
    if (/Done|Error/.test(status)) break;
    await page.waitForTimeout(250);
  }
  check(/Done/.test(status), `generation did not finish: status ${JSON.stringify(status)}`);
  check(previewSeen, 'the face preview never appeared');
  check(result.progress.some((p) => /\d+\/\d+ frame/.test(p)), `no frame progress seen: ${result.progress.join(' / ')}`);
  const previewStatus = await text('#preview-status');
  check(/face found/i.test(previewStatus), `preview status: ${previewStatus}`);
  if (!midShot) await shot('02-generating.png');
  step('video generated');

  // 3. the result: a playable video as long as the audio, and a download link
  const video = page.locator('#result video');
  await video.waitFor({ state: 'attached' });
  const meta = await video.evaluate(
    (v) => new Promise((resolve) => {
      const done = () => resolve({ duration: v.duration, width: v.videoWidth, height: v.videoHeight, src: v.currentSrc });
      if (v.readyState >= 1) done();
      else {
        v.addEventListener('loadedmetadata', done, { once: true });
        v.addEventListener('error', () => resolve({ error: v.error && v.error.code }), { once: true });
        setTimeout(() => resolve({ timeout: true, readyState: v.readyState }), 20_000);
      }
    }),
  );
  result.video = meta;
  check(meta.duration > 0, `video has no duration: ${JSON.stringify(meta)}`);
  check(Math.abs(meta.duration - audioSeconds) < 0.2, `video lasts ${meta.duration} s, audio ${audioSeconds} s`);
  check(meta.width > 0 && meta.height > 0, `video has no picture: ${JSON.stringify(meta)}`);
  result.played_to = await video.evaluate(async (v) => {
    v.muted = true;
    await v.play();
    await new Promise((r) => setTimeout(r, 600));
    v.pause();
    return v.currentTime;
  });
  check(result.played_to > 0, 'the video does not play');
  const link = page.locator('#result a[download]');
  const href = await link.getAttribute('href');
  result.download_name = await link.getAttribute('download');
  const response = await page.request.get(href);
  const body = await response.body();
  result.download_bytes = body.length;
  check(response.ok() && body.subarray(4, 8).toString() === 'ftyp', `download is not an mp4 (HTTP ${response.status()})`);
  check(/\.mp4$/.test(result.download_name ?? ''), `download name ${result.download_name}`);
  await video.evaluate((v) => { v.currentTime = 0; });
  await page.waitForTimeout(300);
  await shot('03-result.png');
  step('video checked');

  // 4. a photo without a face: readable messages, no traceback
  await page.locator('#photo button[aria-label="Remove Image"]').click();
  await page.locator('#photo input[type=file]').setInputFiles(opt.noface);
  result.noface_preview = await waitForText('#preview-status', /no face/i, 120_000);
  await shot('04-no-face.png');
  step('no-face preview message');
  await page.locator('#generate').click();
  result.noface_generate = await waitForText('#gen-status', /Error/, 120_000);
  check(/no face/i.test(result.noface_generate), `generate error: ${result.noface_generate}`);
  const pageText = await page.locator('body').innerText();
  check(!/Traceback|File ".*", line \d+/.test(pageText), 'a traceback is shown on the page');
  await shot('05-no-face-generate.png');
  step('no-face generate message');

  // 5. still serving: a face photo gets a preview again
  await page.locator('#photo button[aria-label="Remove Image"]').click();
  await page.locator('#photo input[type=file]').setInputFiles(opt.face);
  await waitForText('#preview-status', /face found/i, 120_000);
  step('server still serving');
  check(result.external_requests.length === 0, `requests left the machine: ${result.external_requests.join(', ')}`);
  result.ok = true;
} catch (err) {
  result.ok = false;
  result.error = String(err && err.stack ? err.stack : err);
  exitCode = 1;
  await shot('99-failure.png').catch(() => {});
} finally {
  result.seconds = (Date.now() - t0) / 1000;
  await browser.close();
}
console.log(`RESULT ${JSON.stringify(result)}`);
process.exit(exitCode);
