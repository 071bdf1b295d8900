//! Call recording: a stereo WAV (caller left, agent right, 8 kHz 16-bit) written by a writer
//! thread fed through a bounded channel, so the relay never waits for the disk.
//!
//! The WAV header is rewritten about once per second of audio ([`hound::WavWriter::flush`]),
//! so after a crash or restart the file is a valid WAV holding all but the last second. A
//! write error (disk full, I/O error) marks the recording failed and counts it; the call
//! itself is never affected and nothing panics.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufWriter, Seek, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::audio_clip::PROMPT_SAMPLE_RATE;

/// Frames (20 ms each, either leg) the channel holds: 5 s of both legs, slack for a slow
/// disk; memory is only used while the writer is behind.
const CHANNEL_FRAMES: usize = 500;
/// Header rewrite interval in stereo sample frames (1 s).
const FLUSH_EVERY: u64 = PROMPT_SAMPLE_RATE as u64;
/// When one side is ahead by this much (1 s), the other is silent (hold, one-way audio) and
/// is padded with silence so the channels stay in step.
const MAX_SKEW: usize = PROMPT_SAMPLE_RATE as usize;

/// Which stereo channel a frame belongs to.
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
    /// Recordings that failed on a write error.
    pub errors: AtomicU64,
    /// Frames dropped because the writer thread fell behind.
    pub dropped_frames: AtomicU64,
}

/// How a recording ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordingOutcome {
    /// Everything pushed was written and the file is final.
    Complete {
        /// Stereo sample frames written (8000 a second).
        frames: u64,
    },
    /// A write failed; the file holds what was written before (valid up to the last header rewrite).
    Failed {
        /// The error, for the CDR and logs.
        reason: String,
        /// Stereo sample frames written before the failure.
        frames: u64,
    },
}

/// Why a recording could not start.
#[derive(Debug, thiserror::Error)]
pub enum RecorderError {
    /// The file could not be created.
    #[error("cannot create recording {path}: {source}")]
    Create {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The WAV header could not be written.
    #[error("cannot start WAV: {0}")]
    Wav(String),
    /// The writer thread could not be spawned.
    #[error("cannot spawn the recorder thread: {0}")]
    Thread(std::io::Error),
}

enum Message {
    Frame(Channel, Vec<i16>),
}

/// A recording in progress. Dropping it without [`Recorder::finish`] still finalises the file.
#[derive(Debug)]
pub struct Recorder {
    sender: Option<SyncSender<Message>>,
    writer: Option<JoinHandle<RecordingOutcome>>,
    metrics: Arc<RecorderMetrics>,
}

impl Recorder {
    /// Starts recording into a new file at `path`.
    pub fn create(path: &Path, metrics: Arc<RecorderMetrics>) -> Result<Recorder, RecorderError> {
        let file = File::create(path).map_err(|source| {
            metrics.errors.fetch_add(1, Ordering::Relaxed);
            RecorderError::Create {
                path: path.display().to_string(),
                source,
            }
        })?;
        Recorder::with_writer(BufWriter::new(file), metrics)
    }

    /// Starts recording into any seekable writer (tests, other storage).
    pub fn with_writer<W>(
        writer: W,
        metrics: Arc<RecorderMetrics>,
    ) -> Result<Recorder, RecorderError>
    where
        W: Write + Seek + Send + 'static,
    {
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: PROMPT_SAMPLE_RATE,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let wav = hound::WavWriter::new(writer, spec).map_err(|e| {
            metrics.errors.fetch_add(1, Ordering::Relaxed);
            RecorderError::Wav(e.to_string())
        })?;
        let (sender, receiver) = sync_channel(CHANNEL_FRAMES);
        let thread_metrics = Arc::clone(&metrics);
        let writer = std::thread::Builder::new()
            .name("recorder".to_string())
            .spawn(move || write_loop(wav, receiver, &thread_metrics))
            .map_err(RecorderError::Thread)?;
        Ok(Recorder {
            sender: Some(sender),
            writer: Some(writer),
            metrics,
        })
    }

    /// Queues decoded audio from one leg. Never blocks: if the writer is behind, the frame is
    /// dropped and counted (the recording gets a gap, the call is unaffected).
    pub fn push(&self, channel: Channel, samples: &[i16]) {
        let Some(sender) = &self.sender else {
            return;
        };
        match sender.try_send(Message::Frame(channel, samples.to_vec())) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.metrics.dropped_frames.fetch_add(1, Ordering::Relaxed);
            }
            // The writer stopped (it only does on failure, already counted): nothing to do.
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// Stops, writes the rest, finalises the header and reports the outcome.
    pub fn finish(mut self) -> RecordingOutcome {
        self.close()
    }

    fn close(&mut self) -> RecordingOutcome {
        self.sender.take();
        match self.writer.take().map(JoinHandle::join) {
            Some(Ok(outcome)) => outcome,
            Some(Err(_)) => RecordingOutcome::Failed {
                reason: "recorder thread panicked".to_string(),
                frames: 0,
            },
            None => RecordingOutcome::Failed {
                reason: "recording already closed".to_string(),
                frames: 0,
            },
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if self.writer.is_some() {
            let _ = self.close();
        }
    }
}

struct StereoWriter<W: Write + Seek> {
    wav: hound::WavWriter<W>,
    frames: u64,
    since_flush: u64,
}

impl<W: Write + Seek> StereoWriter<W> {
    fn write_pairs(
        &mut self,
        left: &mut VecDeque<i16>,
        right: &mut VecDeque<i16>,
        count: usize,
    ) -> Result<(), hound::Error> {
        for _ in 0..count {
            self.wav.write_sample(left.pop_front().unwrap_or(0))?;
            self.wav.write_sample(right.pop_front().unwrap_or(0))?;
        }
        self.frames += count as u64;
        self.since_flush += count as u64;
        if self.since_flush >= FLUSH_EVERY {
            self.wav.flush()?;
            self.since_flush = 0;
        }
        Ok(())
    }
}

fn write_loop<W: Write + Seek>(
    wav: hound::WavWriter<W>,
    receiver: Receiver<Message>,
    metrics: &RecorderMetrics,
) -> RecordingOutcome {
    let mut writer = StereoWriter {
        wav,
        frames: 0,
        since_flush: 0,
    };
    let mut left = VecDeque::new();
    let mut right = VecDeque::new();
    let fail = |error: hound::Error, frames: u64, receiver: &Receiver<Message>| {
        metrics.errors.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(%error, "recording failed; the call continues without it");
        // Keep taking frames so the relay's sends never see a full channel pile up.
        for _ in receiver.iter() {}
        RecordingOutcome::Failed {
            reason: error.to_string(),
            frames,
        }
    };
    for Message::Frame(channel, samples) in receiver.iter() {
        match channel {
            Channel::Caller => left.extend(samples),
            Channel::Agent => right.extend(samples),
        }
        let ready = left.len().min(right.len());
        let skew = left.len().abs_diff(right.len());
        let count = if skew > MAX_SKEW {
            left.len().max(right.len()) - MAX_SKEW / 2
        } else {
            ready
        };
        if let Err(e) = writer.write_pairs(&mut left, &mut right, count) {
            return fail(e, writer.frames, &receiver);
        }
    }
    let rest = left.len().max(right.len());
    if let Err(e) = writer.write_pairs(&mut left, &mut right, rest) {
        return fail(e, writer.frames, &receiver);
    }
    let frames = writer.frames;
    match writer.wav.finalize() {
        Ok(()) => RecordingOutcome::Complete { frames },
        Err(e) => {
            metrics.errors.fetch_add(1, Ordering::Relaxed);
            RecordingOutcome::Failed {
                reason: e.to_string(),
                frames,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, SeekFrom};

    #[test]
    fn writes_a_valid_stereo_wav_of_the_expected_length() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("call.wav");
        let metrics = Arc::new(RecorderMetrics::default());
        let recorder = Recorder::create(&path, Arc::clone(&metrics)).expect("create");
        // 3 s of 20 ms frames from both legs: caller +1000, agent -1000.
        for _ in 0..150 {
            recorder.push(Channel::Caller, &[1000; 160]);
            recorder.push(Channel::Agent, &[-1000; 160]);
        }
        assert_eq!(
            recorder.finish(),
            RecordingOutcome::Complete { frames: 24_000 }
        );
        let reader = hound::WavReader::open(&path).expect("valid WAV");
        let spec = reader.spec();
        assert_eq!(
            (spec.channels, spec.sample_rate, spec.bits_per_sample),
            (2, 8000, 16)
        );
        assert_eq!(reader.duration(), 24_000, "3 s at 8 kHz");
        let samples: Vec<i16> = reader
            .into_samples::<i16>()
            .collect::<Result<_, _>>()
            .expect("readable");
        assert!(
            samples.chunks(2).all(|pair| pair == [1000, -1000]),
            "caller left, agent right"
        );
        assert_eq!(metrics.errors.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn one_sided_audio_is_padded_with_silence() {
        let mut cursor_holder = SharedBuffer::default();
        let recorder =
            Recorder::with_writer(cursor_holder.clone(), Arc::new(RecorderMetrics::default()))
                .expect("start");
        for _ in 0..100 {
            recorder.push(Channel::Caller, &[500; 160]); // agent on mute/hold: sends nothing
        }
        recorder.push(Channel::Agent, &[-7; 160]);
        assert_eq!(
            recorder.finish(),
            RecordingOutcome::Complete { frames: 16_000 }
        );
        let reader = hound::WavReader::new(Cursor::new(cursor_holder.take())).expect("valid WAV");
        let samples: Vec<i16> = reader
            .into_samples::<i16>()
            .collect::<Result<_, _>>()
            .expect("readable");
        assert_eq!(samples.len(), 32_000);
        assert!(samples.chunks(2).all(|pair| pair[0] == 500));
        assert_eq!(
            samples
                .iter()
                .skip(1)
                .step_by(2)
                .filter(|&&s| s == -7)
                .count(),
            160
        );
    }

    #[test]
    fn file_is_valid_before_finish() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("crash.wav");
        let recorder =
            Recorder::create(&path, Arc::new(RecorderMetrics::default())).expect("create");
        for _ in 0..110 {
            recorder.push(Channel::Caller, &[1; 160]);
            recorder.push(Channel::Agent, &[2; 160]);
        }
        // Simulate a crash: the process dies with the recorder running. Until then the header
        // was rewritten every second, so what is on disk now reads as a valid WAV.
        std::thread::sleep(std::time::Duration::from_millis(200));
        let on_disk = std::fs::read(&path).expect("file exists");
        let reader = hound::WavReader::new(Cursor::new(on_disk)).expect("valid WAV mid-call");
        assert!(
            reader.duration() >= 8000,
            "at least the first second is readable"
        );
        std::mem::forget(recorder); // like a crash: no finalisation
    }

    #[test]
    fn disk_full_marks_the_recording_failed_and_counts() {
        let metrics = Arc::new(RecorderMetrics::default());
        let recorder = Recorder::with_writer(FullDisk::new(20_000), Arc::clone(&metrics))
            .expect("header fits");
        for _ in 0..200 {
            recorder.push(Channel::Caller, &[1; 160]);
            recorder.push(Channel::Agent, &[2; 160]);
        }
        match recorder.finish() {
            RecordingOutcome::Failed { frames, .. } => assert!(frames < 5000),
            other => panic!("expected failure, got {other:?}"),
        }
        assert_eq!(metrics.errors.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn unwritable_path_is_an_error_not_a_panic() {
        let metrics = Arc::new(RecorderMetrics::default());
        assert!(
            Recorder::create(Path::new("/nonexistent/dir/x.wav"), Arc::clone(&metrics)).is_err()
        );
        assert_eq!(metrics.errors.load(Ordering::Relaxed), 1);
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

    /// An in-memory writer the test can read back after the recorder thread is done.
    #[derive(Clone, Default)]
    struct SharedBuffer(Arc<std::sync::Mutex<Cursor<Vec<u8>>>>);

    impl SharedBuffer {
        fn take(&mut self) -> Vec<u8> {
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
