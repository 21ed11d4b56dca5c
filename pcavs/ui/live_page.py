"""The Live tab's page: its layout and the browser side of the WebRTC call (signalling over Gradio events)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .live import LiveManager

__all__ = ["LIVE_JS_ANSWER", "LIVE_JS_START", "LIVE_JS_STOP", "add_live_tab"]

# Browser side. START: open the peer connection with the microphone (and camera), gather ICE, return the
# offer in place of the hidden offer box's value; ANSWER: apply the server's answer; STOP: hang up.
LIVE_JS_START = """
async (photo, pose, useCam, offer) => {
  if (window.pcavsLive) { window.pcavsLive.pc.close(); window.pcavsLive.media.getTracks().forEach(t => t.stop()); }
  const pc = new RTCPeerConnection({iceServers: []});
  // the server tracks 2.5 camera frames a second at <= 320 px: a small, slow camera costs the browser's
  // encoder and the server's receiver less of the CPU that the model and the sound need
  const cam = {width: {ideal: 320}, height: {ideal: 240}, frameRate: {ideal: 10, max: 15}};
  const media = await navigator.mediaDevices.getUserMedia({audio: true, video: useCam ? cam : false});
  media.getTracks().forEach(t => pc.addTrack(t, media));
  if (!useCam) pc.addTransceiver('video', {direction: 'recvonly'});
  const remote = new MediaStream();
  pc.ontrack = (e) => {
    remote.addTrack(e.track);
    const v = document.querySelector('#pcavs-live-video');
    if (v) { v.srcObject = remote; v.play().catch(() => {}); }
  };
  window.pcavsLive = {pc, media, remote};
  // Lip sync. Chrome aligns the two tracks only once they are > 30 ms apart, and then by half the gap a
  // second, while a burst of late packets can grow its sound buffer by hundreds of ms at once. Twice a
  // second the page compares where the two play (estimatedPlayoutTimestamp: the sender's clock, the same
  // moment sent at the same instant) and holds the one ahead for half the gap longer (jitterBufferTarget,
  // releasing what the other holds first).
  const hold = {audio: 0, video: 0};
  const steer = async () => {
    if (pc.connectionState === 'closed') return;
    const at = {}, rx = {};
    pc.getReceivers().forEach((r) => { rx[r.track.kind] = r; });
    (await pc.getStats()).forEach((r) => {
      if (r.type === 'inbound-rtp' && r.estimatedPlayoutTimestamp) at[r.kind] = r.estimatedPlayoutTimestamp;
    });
    const gap = at.audio && at.video ? at.video - at.audio : 0;  // ms the picture plays ahead of the sound
    if (Math.abs(gap) > 10 && rx.audio && rx.video && 'jitterBufferTarget' in rx.video) {
      const [ahead, behind] = gap > 0 ? ['video', 'audio'] : ['audio', 'video'];
      const step = Math.abs(gap) / 2, free = Math.min(hold[behind], step);
      hold[behind] -= free;
      hold[ahead] = Math.min(hold[ahead] + step - free, 3000);
      rx.audio.jitterBufferTarget = hold.audio;
      rx.video.jitterBufferTarget = hold.video;
    }
    setTimeout(steer, 500);
  };
  setTimeout(steer, 1000);
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((done) => {
    if (pc.iceGatheringState === 'complete') return done();
    pc.addEventListener('icegatheringstatechange', () => { if (pc.iceGatheringState === 'complete') done(); });
    setTimeout(done, 3000);
  });
  return [photo, pose, useCam, JSON.stringify({sdp: pc.localDescription.sdp, type: pc.localDescription.type})];
}
"""

LIVE_JS_ANSWER = """
async (answer) => {
  if (answer && window.pcavsLive) { await window.pcavsLive.pc.setRemoteDescription(JSON.parse(answer)); }
  return [answer];
}
"""

LIVE_JS_STOP = """
() => {
  if (window.pcavsLive) { window.pcavsLive.pc.close(); window.pcavsLive.media.getTracks().forEach(t => t.stop()); }
  window.pcavsLive = null;
  return [];
}
"""


def add_live_tab(gr: Any, manager: LiveManager | None) -> None:
    """Lay out the Live tab inside the current ``gr.Blocks`` context."""
    if manager is None:
        gr.Markdown("Live needs WebRTC support: `pip install 'pcavs[live]'` (aiortc), then restart `pcavs ui`.")
        return
    gr.Markdown("Speak into the **microphone**: the face speaks with your voice, a moment later. Optionally your "
                "**camera** moves the head, or a pose track / video does; otherwise the photo's own pose is kept.")
    with gr.Row():
        with gr.Column(scale=4):
            photo = gr.Image(label="Identity photo (empty: the demo face)", type="filepath", height=220,
                             sources=["upload", "clipboard"], elem_id="live-photo")
            pose = gr.File(label="Pose track (.npz) or video (optional)", file_types=[".npz", "video"],
                           type="filepath", elem_id="live-pose")
            use_cam = gr.Checkbox(label="Move the head with my camera", value=False, elem_id="live-camera")
            with gr.Row():
                start = gr.Button("Start", variant="primary", elem_id="live-start")
                stop = gr.Button("Stop", elem_id="live-stop")
        with gr.Column(scale=5):
            gr.HTML('<video id="pcavs-live-video" autoplay playsinline style="width:100%;max-height:360px;'
                    'background:#111"></video>')
            status = gr.Markdown(elem_id="live-status")
    offer = gr.Textbox(visible=False)
    answer = gr.Textbox(visible=False)
    timer = gr.Timer(1.0)

    async def on_start(photo_v: str | None, pose_v: str | None, cam: bool, offer_v: str,
                       request: gr.Request) -> str:
        if isinstance(pose_v, str) and Path(pose_v).suffix.lower() not in (".npz", ".mp4", ".mov", ".mkv",
                                                                          ".webm", ".avi"):
            pose_v = None
        return await manager.start(request.session_hash or "default", offer_v, photo_v, None if cam else pose_v,
                                   camera=bool(cam))

    async def on_stop(request: gr.Request) -> str:
        await manager.stop(request.session_hash or "default")
        return "Stopped."

    def on_tick(request: gr.Request) -> str:
        return manager.status(request.session_hash or "default")

    for fn in (on_start, on_stop, on_tick):  # gradio finds the request by its type; annotations are strings here
        fn.__annotations__["request"] = gr.Request
    start.click(on_start, [photo, pose, use_cam, offer], answer, js=LIVE_JS_START, api_visibility="private",
                concurrency_id="live", concurrency_limit=4).then(
        None, answer, answer, js=LIVE_JS_ANSWER, api_visibility="private")
    stop.click(on_stop, None, status, js=LIVE_JS_STOP, api_visibility="private")
    timer.tick(on_tick, None, status, api_visibility="private", show_progress="hidden")
