//! Call recording: stereo WAV files (caller left, agent right, 8 kHz 16-bit) written by a
//! small, fixed pool of writer threads shared by every call, so thousands of recorded calls
//! need a handful of threads, not one each, and the relay never waits for the disk.
//!
//! A [`Recording`] is the per-call handle. The media session pushes each leg's decoded audio
//! into it as packets arrive; the handle aligns the two directions into 20 ms stereo frames
//! (no timer: the channel that had no packet is padded with silence once the other runs a
//! few frames ahead) and hands batches of frames to its writer thread through a bounded
//! queue. When the queue is full the batch is dropped and counted; the call never blocks.
//!
//! Files are written as `<path>.part` and renamed to `<path>` only when finished, so a crash
//! never leaves a half-written file under the final name; the WAV header is rewritten about
//! once a second, so even a `.part` left by a crash is a valid WAV of all but the last second.
//! A write error (disk full, unwritable directory) marks that recording failed and counts it;
//! the call and the other recordings go on.

use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::fs::File;
use std::io::{BufWriter, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::audio_clip::PROMPT_SAMPLE_RATE;
use crate::codec::SAMPLES_PER_20MS;

/// Messages each writer thread's queue holds. A message is a batch of [`BATCH_FRAMES`]
/// frames (3.2 KB), so this is ~0.8 s of audio for 1000 recorded calls per thread; memory is
/// only used while a writer is behind.
const QUEUE_MESSAGES: usize = 8192;
/// 20 ms stereo frames sent to the writer in one message (100 ms): amortises the queue
/// operation and allocation over five packets per leg.
const BATCH_FRAMES: usize = 5;
/// Interleaved samples in one 20 ms stereo frame.
const FRAME_SAMPLES: usize = 2 * SAMPLES_PER_20MS;
/// Once one direction is this many samples (60 ms) ahead with nothing from the other, the
/// other is treated as silent (mute, hold, one-way audio) and padded; below it, arrival
/// jitter between the legs is absorbed and the channels stay sample-aligned.
const MAX_LEAD: usize = 3 * SAMPLES_PER_20MS;
/// Header rewrite interval in 20 ms frames (1 s).
const FLUSH_EVERY_FRAMES: u64 = 50;
/// How long [`Recording::finish`] waits for the writer to confirm the file is complete.
const FINISH_WAIT: Duration = Duration::from_secs(10);
/// Suffix of a file still being written.
const PART_SUFFIX: &str = ".part";

/// Which stereo channel audio belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// Left: the caller (trunk leg).
    Caller,
    /// Right: the agent.
    Agent,
}

/// Process-wide recorder counters (exported as metrics by the binary).
#[derive(Debug, Default)]
pub struct RecorderMetrics {
    /// Recordings that failed (file not creatable, write error).
    pub errors: AtomicU64,
    /// 20 ms frames dropped because a writer thread fell behind.
    pub dropped_frames: AtomicU64,
}

/// How a recording ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordingOutcome {
    /// Everything that reached the writer was written and the file has its final name.
    Complete {
        /// The final file (`None` for a recording into a caller-supplied writer).
        path: Option<PathBuf>,
        /// 20 ms stereo frames written.
        frames: u64,
        /// 20 ms frames lost because the writer was behind (gaps in the audio).
        dropped_frames: u64,
        /// Length of the audio in the file.
        duration: Duration,
    },
    /// The file could not be created or a write failed; a `.part` file may hold what was
    /// written before (valid up to the last header rewrite).
    Failed {
        /// The intended final file (`None` for a caller-supplied writer).
        path: Option<PathBuf>,
        /// The error, for the CDR and logs.
        reason: String,
        /// 20 ms stereo frames written before the failure.
        frames: u64,
        /// 20 ms frames lost because the writer was behind.
        dropped_frames: u64,
    },
}

/// Why a recording could not start.
#[derive(Debug, thiserror::Error)]
pub enum RecorderError {
    /// A writer thread could not be spawned.
    #[error("cannot spawn a recorder thread: {0}")]
    Thread(std::io::Error),
    /// The writer's queue is full (the disk is far behind): refuse rather than block call control.
    #[error("recorder queue is full; the disk is not keeping up")]
    Busy,
    /// The writer threads have stopped.
    #[error("recorder has stopped")]
    Stopped,
}

/// Anything a WAV can be written into.
trait WavSink: Write + Seek + Send {}
impl<T: Write + Seek + Send> WavSink for T {}

/// Where one recording goes.
enum Target {
    /// A file, written as `<path>.part` and renamed at the end.
    File(PathBuf),
    /// A caller-supplied writer (tests, other storage): no rename.
    Writer(Box<dyn WavSink>),
}

enum WriterMessage {
    Open {
        id: u64,
        target: Target,
    },
    /// Interleaved stereo samples, a whole number of 20 ms frames.
    Audio {
        id: u64,
        samples: Vec<i16>,
    },
    Finish {
        id: u64,
        dropped_frames: u64,
        reply: Option<oneshot::Sender<RecordingOutcome>>,
    },
}

/// The shared writer threads. Cheap to share (`Arc`) between all calls.
#[derive(Debug)]
pub struct RecorderPool {
    writers: Vec<mpsc::Sender<WriterMessage>>,
    next_writer: AtomicUsize,
    next_id: AtomicU64,
    metrics: Arc<RecorderMetrics>,
}

impl RecorderPool {
    /// Starts `threads` writer threads (at least one; one keeps up with a local disk for
    /// thousands of calls, more only help with slow or network storage).
    pub fn new(
        threads: usize,
        metrics: Arc<RecorderMetrics>,
    ) -> Result<RecorderPool, RecorderError> {
        RecorderPool::with_queue(threads, QUEUE_MESSAGES, metrics)
    }

    /// Like [`RecorderPool::new`] with each writer's queue holding `messages` batches of
    /// 100 ms of one call (at least 1) instead of the default 8192.
    pub fn with_queue(
        threads: usize,
        messages: usize,
        metrics: Arc<RecorderMetrics>,
    ) -> Result<RecorderPool, RecorderError> {
        let mut writers = Vec::with_capacity(threads.max(1));
        for n in 0..threads.max(1) {
            let (sender, receiver) = mpsc::channel(messages.max(1));
            let thread_metrics = Arc::clone(&metrics);
            std::thread::Builder::new()
                .name(format!("recorder-{n}"))
                .spawn(move || write_loop(receiver, &thread_metrics))
                .map_err(RecorderError::Thread)?;
            writers.push(sender);
        }
        Ok(RecorderPool {
            writers,
            next_writer: AtomicUsize::new(0),
            next_id: AtomicU64::new(0),
            metrics,
        })
    }

    /// The counters shared by all recordings of this pool.
    pub fn metrics(&self) -> &Arc<RecorderMetrics> {
        &self.metrics
    }

    /// Starts a recording into the file `path` (created by the writer thread, so call control
    /// does no disk I/O; a file that cannot be created shows as a failed outcome at the end).
    pub fn start(&self, path: &Path) -> Result<Recording, RecorderError> {
        self.open(Target::File(path.to_path_buf()), Some(path.to_path_buf()))
    }

    /// Starts a recording into any seekable writer (tests, other storage).
    pub fn start_with_writer<W>(&self, writer: W) -> Result<Recording, RecorderError>
    where
        W: Write + Seek + Send + 'static,
    {
        self.open(Target::Writer(Box::new(writer)), None)
    }

    fn open(&self, target: Target, path: Option<PathBuf>) -> Result<Recording, RecorderError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let index = self.next_writer.fetch_add(1, Ordering::Relaxed) % self.writers.len();
        let sender = self
            .writers
            .get(index)
            .ok_or(RecorderError::Stopped)?
            .clone();
        sender
            .try_send(WriterMessage::Open { id, target })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => RecorderError::Busy,
                mpsc::error::TrySendError::Closed(_) => RecorderError::Stopped,
            })?;
        Ok(Recording {
            id,
            path,
            sender,
            aligner: StereoAligner::default(),
            batch: Vec::with_capacity(BATCH_FRAMES * FRAME_SAMPLES),
            dropped_frames: 0,
            metrics: Arc::clone(&self.metrics),
            finished: false,
        })
    }
}

/// One call's recording in progress. Dropping it without [`Recording::finish`] still asks
/// the writer to finalise the file (if its queue has room; otherwise the `.part` stays).
pub struct Recording {
    id: u64,
    path: Option<PathBuf>,
    sender: mpsc::Sender<WriterMessage>,
    aligner: StereoAligner,
    batch: Vec<i16>,
    dropped_frames: u64,
    metrics: Arc<RecorderMetrics>,
    finished: bool,
}

impl std::fmt::Debug for Recording {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recording")
            .field("id", &self.id)
            .field("path", &self.path)
            .field("dropped_frames", &self.dropped_frames)
            .finish()
    }
}

impl Recording {
    /// The final file name, if recording into a file.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Adds decoded audio from one direction, as it arrives. Never blocks: if the writer is
    /// behind, whole batches are dropped and counted (the recording gets a gap).
    pub fn push(&mut self, channel: Channel, samples: &[i16]) {
        self.aligner.push(channel, samples);
        while self.aligner.pop_frame(&mut self.batch, false) {
            if self.batch.len() >= BATCH_FRAMES * FRAME_SAMPLES {
                self.send_batch();
            }
        }
    }

    /// Writes what is left, finalises the file (renaming `.part` to its final name) and
    /// reports the outcome. Waits for queue room rather than dropping the end of the call.
    pub async fn finish(mut self) -> RecordingOutcome {
        self.finished = true;
        while self.aligner.pop_frame(&mut self.batch, true) {}
        let (reply, outcome) = oneshot::channel();
        let id = self.id;
        let dropped_frames = self.dropped_frames;
        let sender = self.sender.clone();
        let tail = std::mem::take(&mut self.batch);
        let confirmed = tokio::time::timeout(FINISH_WAIT, async move {
            if !tail.is_empty() {
                sender
                    .send(WriterMessage::Audio { id, samples: tail })
                    .await
                    .ok()?;
            }
            sender
                .send(WriterMessage::Finish {
                    id,
                    dropped_frames,
                    reply: Some(reply),
                })
                .await
                .ok()?;
            outcome.await.ok()
        })
        .await;
        let reason = match confirmed {
            Ok(Some(outcome)) => return outcome,
            Ok(None) => "recorder stopped before the file was finished".to_string(),
            Err(_) => format!(
                "recorder did not finish the file within {} s",
                FINISH_WAIT.as_secs()
            ),
        };
        self.metrics.errors.fetch_add(1, Ordering::Relaxed);
        RecordingOutcome::Failed {
            path: self.path.clone(),
            reason,
            frames: 0,
            dropped_frames,
        }
    }

    fn send_batch(&mut self) {
        let frames = (self.batch.len() / FRAME_SAMPLES) as u64;
        if self.sender.capacity() == 0 {
            // Full: drop this batch and keep the buffer, so a slow disk costs no allocation.
            self.batch.clear();
            self.dropped_frames += frames;
            self.metrics
                .dropped_frames
                .fetch_add(frames, Ordering::Relaxed);
            return;
        }
        let samples = std::mem::replace(
            &mut self.batch,
            Vec::with_capacity(BATCH_FRAMES * FRAME_SAMPLES),
        );
        if let Err(e) = self.sender.try_send(WriterMessage::Audio {
            id: self.id,
            samples,
        }) {
            // Another call filled the queue in between, or the writers stopped.
            let lost = match e {
                mpsc::error::TrySendError::Full(WriterMessage::Audio { samples, .. })
                | mpsc::error::TrySendError::Closed(WriterMessage::Audio { samples, .. }) => {
                    samples.len() / FRAME_SAMPLES
                }
                _ => 0,
            } as u64;
            self.dropped_frames += lost;
            self.metrics
                .dropped_frames
                .fetch_add(lost, Ordering::Relaxed);
        }
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        while self.aligner.pop_frame(&mut self.batch, true) {}
        if !self.batch.is_empty() {
            self.send_batch();
        }
        // Best effort: a full queue leaves the `.part` file, which is still a valid WAV.
        let _ = self.sender.try_send(WriterMessage::Finish {
            id: self.id,
            dropped_frames: self.dropped_frames,
            reply: None,
        });
    }
}

/// Pairs the two directions into 20 ms stereo frames by arrival, with no timer: a frame is
/// emitted when both sides have 20 ms, or when one side runs [`MAX_LEAD`] ahead of a silent
/// other side (then padded with silence). Memory is bounded by the lead plus one packet.
#[derive(Debug, Default)]
struct StereoAligner {
    left: VecDeque<i16>,
    right: VecDeque<i16>,
}

impl StereoAligner {
    fn push(&mut self, channel: Channel, samples: &[i16]) {
        match channel {
            Channel::Caller => self.left.extend(samples),
            Channel::Agent => self.right.extend(samples),
        }
    }

    /// Appends the next interleaved frame to `out` if one is due (`flush`: whatever is left).
    fn pop_frame(&mut self, out: &mut Vec<i16>, flush: bool) -> bool {
        let (l, r) = (self.left.len(), self.right.len());
        let due = (l >= SAMPLES_PER_20MS && r >= SAMPLES_PER_20MS)
            || l.max(r) > MAX_LEAD
            || (flush && l.max(r) > 0);
        if !due {
            return false;
        }
        for _ in 0..SAMPLES_PER_20MS {
            out.push(self.left.pop_front().unwrap_or(0));
            out.push(self.right.pop_front().unwrap_or(0));
        }
        true
    }
}

/// An open recording on a writer thread.
struct OpenRecording {
    /// `(final path, .part path)` for file targets.
    paths: Option<(PathBuf, PathBuf)>,
    wav: Result<hound::WavWriter<Box<dyn WavSink>>, String>,
    frames: u64,
    since_flush: u64,
}

impl OpenRecording {
    fn open(target: Target) -> OpenRecording {
        let (paths, sink): (_, Result<Box<dyn WavSink>, String>) = match target {
            Target::File(path) => {
                let mut part = OsString::from(path.as_os_str());
                part.push(PART_SUFFIX);
                let part = PathBuf::from(part);
                // The folder (recordings are filed by day) is made here too, on the writer
                // thread, so whoever starts a recording touches no disk.
                let folder = part.parent().map_or(Ok(()), std::fs::create_dir_all);
                let sink = folder
                    .and_then(|()| File::create(&part))
                    .map(|file| Box::new(BufWriter::new(file)) as Box<dyn WavSink>)
                    .map_err(|e| format!("cannot create {}: {e}", part.display()));
                (Some((path, part)), sink)
            }
            Target::Writer(writer) => (None, Ok(writer)),
        };
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: PROMPT_SAMPLE_RATE,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let wav = sink.and_then(|sink| {
            hound::WavWriter::new(sink, spec).map_err(|e| format!("cannot start WAV: {e}"))
        });
        OpenRecording {
            paths,
            wav,
            frames: 0,
            since_flush: 0,
        }
    }

    fn path(&self) -> Option<PathBuf> {
        self.paths.as_ref().map(|(path, _)| path.clone())
    }

    /// Writes a batch; on error the recording turns failed (and is counted once).
    fn write(&mut self, samples: &[i16], metrics: &RecorderMetrics) {
        let Ok(wav) = self.wav.as_mut() else {
            return;
        };
        let result = (|| -> Result<(), hound::Error> {
            for &sample in samples {
                wav.write_sample(sample)?;
            }
            let frames = (samples.len() / FRAME_SAMPLES) as u64;
            self.frames += frames;
            self.since_flush += frames;
            if self.since_flush >= FLUSH_EVERY_FRAMES {
                wav.flush()?;
                self.since_flush = 0;
            }
            Ok(())
        })();
        if let Err(e) = result {
            self.fail(e.to_string(), metrics);
        }
    }

    fn fail(&mut self, reason: String, metrics: &RecorderMetrics) {
        metrics.errors.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(path = ?self.path(), %reason, "recording failed; the call continues without it");
        self.wav = Err(reason);
    }

    fn finish(self, dropped_frames: u64, metrics: &RecorderMetrics) -> RecordingOutcome {
        let path = self.path();
        let finished = match self.wav {
            // Already counted when it happened.
            Err(reason) => Err(reason),
            Ok(wav) => {
                let done = wav
                    .finalize()
                    .map_err(|e| format!("cannot finish WAV: {e}"))
                    .and_then(|()| match &self.paths {
                        Some((path, part)) => std::fs::rename(part, path).map_err(|e| {
                            format!(
                                "cannot rename {} to {}: {e}",
                                part.display(),
                                path.display()
                            )
                        }),
                        None => Ok(()),
                    });
                if done.is_err() {
                    metrics.errors.fetch_add(1, Ordering::Relaxed);
                }
                done
            }
        };
        match finished {
            Ok(()) => RecordingOutcome::Complete {
                path,
                frames: self.frames,
                dropped_frames,
                duration: Duration::from_millis(self.frames * 20),
            },
            Err(reason) => RecordingOutcome::Failed {
                path,
                reason,
                frames: self.frames,
                dropped_frames,
            },
        }
    }
}

fn write_loop(mut receiver: mpsc::Receiver<WriterMessage>, metrics: &RecorderMetrics) {
    let mut open: HashMap<u64, OpenRecording> = HashMap::new();
    while let Some(message) = receiver.blocking_recv() {
        match message {
            WriterMessage::Open { id, target } => {
                let recording = OpenRecording::open(target);
                if let Err(reason) = &recording.wav {
                    metrics.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%reason, "recording could not start; the call continues without it");
                }
                open.insert(id, recording);
            }
            WriterMessage::Audio { id, samples } => {
                if let Some(recording) = open.get_mut(&id) {
                    recording.write(&samples, metrics);
                }
            }
            WriterMessage::Finish {
                id,
                dropped_frames,
                reply,
            } => {
                if let Some(recording) = open.remove(&id) {
                    let outcome = recording.finish(dropped_frames, metrics);
                    if let Some(reply) = reply {
                        // The session may have given up waiting; the file is done either way.
                        let _ = reply.send(outcome);
                    }
                }
            }
        }
    }
    // Every handle is gone (shutdown): finish what is still open so no file stays `.part`.
    for (_, recording) in open.drain() {
        recording.finish(0, metrics);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, SeekFrom};
    use std::sync::Mutex;

    fn pool(metrics: &Arc<RecorderMetrics>) -> RecorderPool {
        RecorderPool::new(1, Arc::clone(metrics)).expect("pool")
    }

    fn read_wav(bytes: Vec<u8>) -> (hound::WavSpec, Vec<i16>) {
        let reader = hound::WavReader::new(Cursor::new(bytes)).expect("valid WAV");
        let spec = reader.spec();
        let samples = reader
            .into_samples::<i16>()
            .collect::<Result<_, _>>()
            .expect("readable");
        (spec, samples)
    }

    #[test]
    fn aligner_pairs_jittered_packets_and_pads_a_silent_side() {
        let mut aligner = StereoAligner::default();
        let mut out = Vec::new();
        // Caller packets 1 and 2 arrive before the agent's first: jitter, not silence.
        aligner.push(Channel::Caller, &[1; 160]);
        aligner.push(Channel::Caller, &[2; 160]);
        assert!(!aligner.pop_frame(&mut out, false));
        aligner.push(Channel::Agent, &[-1; 160]);
        assert!(aligner.pop_frame(&mut out, false));
        assert!(!aligner.pop_frame(&mut out, false));
        assert_eq!(
            &out[..4],
            &[1, -1, 1, -1],
            "first frames paired despite the jitter"
        );
        // The agent goes silent: after 60 ms of lead the caller is written with silence.
        out.clear();
        for n in 3..=6 {
            aligner.push(Channel::Caller, &[n; 160]);
        }
        let mut frames = 0;
        while aligner.pop_frame(&mut out, false) {
            frames += 1;
        }
        assert_eq!(frames, 2, "5 caller frames queued, 3 may wait");
        assert_eq!(&out[..2], &[2, 0]);
        assert!(aligner.left.len() <= MAX_LEAD);
        out.clear();
        while aligner.pop_frame(&mut out, true) {}
        assert_eq!(out.len(), 3 * FRAME_SAMPLES, "flush writes the rest");
    }

    #[tokio::test]
    async fn writes_a_valid_stereo_wav_and_renames_the_part_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("call.wav");
        let metrics = Arc::new(RecorderMetrics::default());
        let mut recording = pool(&metrics).start(&path).expect("start");
        // 3 s of 20 ms frames from both legs: caller +1000, agent -1000.
        for _ in 0..150 {
            recording.push(Channel::Caller, &[1000; 160]);
            recording.push(Channel::Agent, &[-1000; 160]);
        }
        assert_eq!(
            recording.finish().await,
            RecordingOutcome::Complete {
                path: Some(path.clone()),
                frames: 150,
                dropped_frames: 0,
                duration: Duration::from_secs(3),
            }
        );
        assert!(!dir.path().join("call.wav.part").exists());
        let (spec, samples) = read_wav(std::fs::read(&path).expect("final file"));
        assert_eq!(
            (spec.channels, spec.sample_rate, spec.bits_per_sample),
            (2, 8000, 16)
        );
        assert_eq!(samples.len(), 2 * 24_000, "3 s at 8 kHz");
        assert!(
            samples.chunks(2).all(|pair| pair == [1000, -1000]),
            "caller left, agent right"
        );
        assert_eq!(metrics.errors.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn one_sided_audio_is_padded_with_silence() {
        let metrics = Arc::new(RecorderMetrics::default());
        let buffer = SharedBuffer::default();
        let mut recording = pool(&metrics)
            .start_with_writer(buffer.clone())
            .expect("start");
        for _ in 0..100 {
            recording.push(Channel::Caller, &[500; 160]); // agent on mute: sends nothing
        }
        recording.push(Channel::Agent, &[-7; 160]);
        let outcome = recording.finish().await;
        assert!(
            matches!(
                outcome,
                RecordingOutcome::Complete {
                    frames: 100,
                    path: None,
                    ..
                }
            ),
            "{outcome:?}"
        );
        let (_, samples) = read_wav(buffer.bytes());
        assert_eq!(samples.len(), 2 * 16_000);
        assert!(samples.chunks(2).all(|pair| pair[0] == 500));
        let agent: Vec<i16> = samples.iter().skip(1).step_by(2).copied().collect();
        assert_eq!(agent.iter().filter(|&&s| s == -7).count(), 160);
        assert!(
            agent[..16_000 - 4 * 160].iter().all(|&s| s == 0),
            "the late agent frame lands within the last 60 ms"
        );
    }

    #[tokio::test]
    async fn many_recordings_share_one_writer_thread() {
        let dir = tempfile::tempdir().expect("temp dir");
        let metrics = Arc::new(RecorderMetrics::default());
        let pool = pool(&metrics);
        let mut recordings: Vec<Recording> = (0..20)
            .map(|n| {
                pool.start(&dir.path().join(format!("{n}.wav")))
                    .expect("start")
            })
            .collect();
        for _ in 0..25 {
            for (n, recording) in recordings.iter_mut().enumerate() {
                recording.push(Channel::Caller, &[n as i16; 160]);
                recording.push(Channel::Agent, &[-(n as i16); 160]);
            }
        }
        for (n, recording) in recordings.into_iter().enumerate() {
            assert!(matches!(
                recording.finish().await,
                RecordingOutcome::Complete { frames: 25, .. }
            ));
            let (_, samples) =
                read_wav(std::fs::read(dir.path().join(format!("{n}.wav"))).expect("file"));
            assert!(samples.chunks(2).all(|p| p == [n as i16, -(n as i16)]));
        }
    }

    #[tokio::test]
    async fn a_crash_leaves_a_valid_part_file_and_nothing_under_the_final_name() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("crash.wav");
        let metrics = Arc::new(RecorderMetrics::default());
        let pool = pool(&metrics);
        let mut recording = pool.start(&path).expect("start");
        for _ in 0..110 {
            recording.push(Channel::Caller, &[1; 160]);
            recording.push(Channel::Agent, &[2; 160]);
        }
        // The writer handles messages in order: once a later recording is finished, the
        // first one's frames are on disk.
        let barrier = pool.start(&dir.path().join("barrier.wav")).expect("start");
        barrier.finish().await;
        let on_disk = std::fs::read(dir.path().join("crash.wav.part")).expect(".part exists");
        let reader = hound::WavReader::new(Cursor::new(on_disk)).expect("valid WAV mid-call");
        assert!(
            reader.duration() >= 8000,
            "at least the first second is readable"
        );
        assert!(!path.exists(), "no half-written file under the final name");
        recording.finished = true; // like a crash: no finalisation
    }

    #[tokio::test]
    async fn disk_full_marks_the_recording_failed_and_counts_once() {
        let metrics = Arc::new(RecorderMetrics::default());
        let mut recording = pool(&metrics)
            .start_with_writer(FullDisk::new(20_000))
            .expect("start");
        for _ in 0..200 {
            recording.push(Channel::Caller, &[1; 160]);
            recording.push(Channel::Agent, &[2; 160]);
        }
        match recording.finish().await {
            RecordingOutcome::Failed { frames, reason, .. } => {
                assert!(frames < 50, "{frames}");
                assert!(reason.contains("No space"), "{reason}");
            }
            other => panic!("expected failure, got {other:?}"),
        }
        assert_eq!(metrics.errors.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn unwritable_path_is_a_failed_outcome_not_a_panic() {
        let metrics = Arc::new(RecorderMetrics::default());
        // Under a regular file: no folder can be made there, not even by root.
        let blocker = tempfile::NamedTempFile::new().expect("temp file");
        let mut recording = pool(&metrics)
            .start(&blocker.path().join("day").join("x.wav"))
            .expect("creation is the writer's job");
        recording.push(Channel::Caller, &[1; 160]);
        assert!(matches!(
            recording.finish().await,
            RecordingOutcome::Failed { path: Some(_), .. }
        ));
        assert_eq!(metrics.errors.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn a_writer_behind_costs_dropped_frames_not_a_blocked_call() {
        let metrics = Arc::new(RecorderMetrics::default());
        let pool = RecorderPool::with_queue(1, 4, Arc::clone(&metrics)).expect("pool");
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let mut recording = pool
            .start_with_writer(Stalled {
                gate: Some(gate),
                inner: Cursor::new(Vec::new()),
            })
            .expect("start");
        // The writer is stuck on the header; 1 s of audio (10 batches) meets a 4-deep queue.
        for _ in 0..50 {
            recording.push(Channel::Caller, &[1; 160]);
            recording.push(Channel::Agent, &[2; 160]);
        }
        let dropped = metrics.dropped_frames.load(Ordering::Relaxed);
        assert!(dropped >= 25, "{dropped} frames dropped");
        release.send(()).expect("writer waiting");
        match recording.finish().await {
            RecordingOutcome::Complete {
                frames,
                dropped_frames,
                ..
            } => {
                assert_eq!(dropped_frames, dropped);
                assert_eq!(frames + dropped_frames, 50);
            }
            other => panic!("expected a complete recording with gaps, got {other:?}"),
        }
    }

    /// A writer that fails like a full disk after `limit` bytes.
    struct FullDisk {
        inner: Cursor<Vec<u8>>,
        limit: u64,
    }

    impl FullDisk {
        fn new(limit: u64) -> FullDisk {
            FullDisk {
                inner: Cursor::new(Vec::new()),
                limit,
            }
        }
    }

    impl Write for FullDisk {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.inner.position() + buf.len() as u64 > self.limit {
                return Err(std::io::Error::other("No space left on device"));
            }
            self.inner.write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Seek for FullDisk {
        fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
            self.inner.seek(pos)
        }
    }

    /// A writer whose first write waits until the test releases it (a stalled disk).
    struct Stalled {
        gate: Option<std::sync::mpsc::Receiver<()>>,
        inner: Cursor<Vec<u8>>,
    }

    impl Write for Stalled {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if let Some(gate) = self.gate.take() {
                let _ = gate.recv();
            }
            self.inner.write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Seek for Stalled {
        fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
            self.inner.seek(pos)
        }
    }

    /// An in-memory writer the test can read back after the writer thread is done.
    #[derive(Clone, Default)]
    struct SharedBuffer(Arc<Mutex<Cursor<Vec<u8>>>>);

    impl SharedBuffer {
        fn bytes(&self) -> Vec<u8> {
            self.0
                .lock()
                .map(|c| c.get_ref().clone())
                .unwrap_or_default()
        }
    }

    impl Write for SharedBuffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?
                .write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Seek for SharedBuffer {
        fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
            self.0
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?
                .seek(pos)
        }
    }
}
