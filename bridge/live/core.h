/*
 * riff-bridge's realtime core: the JACK process, timebase and xrun callbacks, in C.
 *
 * Realtime contract. rb_process() and the callbacks that call it (rb_jack_process,
 * rb_jack_timebase, rb_jack_xrun) allocate nothing, take no lock, log nothing and cannot fail.
 * They call no function outside this file except libjack's realtime-safe calls
 * (jack_port_get_buffer, jack_transport_query, jack_midi_get_event_count, jack_midi_event_get,
 * jack_get_cycle_times, jack_last_frame_time, jack_get_time) and the compiler's
 * memcpy/memset. tests/test_core_symbols.py checks this with `nm -u` against an allow-list.
 *
 * All state the callbacks touch lives in one rb_core struct that Python allocates, sizes and
 * initialises (rb_init) before activation. Python and the core talk only through it:
 *   - commands (offers of loops, gain, tempo requests) go in through one single-producer/
 *     single-consumer ring; Python is the producer (one thread at a time), the core consumes
 *     at the start of each block;
 *   - loops the core no longer references go back through the retired ring, so Python frees
 *     their audio outside the callback;
 *   - non-clock MIDI, input samples (in_L/in_R) with their JACK frame stamps, bar lines and
 *     loop starts go out through rings the core writes and Python reads;
 *   - counters and the tempo seen are plain fields Python reads.
 * Ring indices are 64-bit counters published with release stores and read with acquire loads.
 *
 * Loop audio is owned by Python (read-only numpy arrays). A loop handed to the core stays
 * alive until its id comes back on the retired ring.
 */
#ifndef RIFF_BRIDGE_CORE_H
#define RIFF_BRIDGE_CORE_H

#include <stdint.h>
#include <jack/jack.h>
#include <jack/midiport.h>
#include <jack/transport.h>

#define RB_MAX_BLOCK 8192          /* largest block (frames) */
#define RB_MAX_FADE 8192           /* longest crossfade (frames) */
#define RB_COMMANDS 256            /* Python -> core command slots */
#define RB_RETIRED 256             /* core -> Python retired loop ids */
#define RB_MIDI_SLOTS 1024         /* non-clock MIDI messages kept for Python */
#define RB_BLOCK_EVENTS 1024       /* MIDI events read per block */
#define RB_CLIP_LOG 4096           /* loop starts kept */
#define RB_BAR_LOG 1024            /* bar lines kept for Python */
#define RB_INPUT_FRAMES (1 << 20)  /* captured input frames kept (23.8 s at 44.1 kHz) */
#define RB_INPUT_BLOCKS 16384      /* captured block stamps kept */
#define RB_HIST_BUCKETS 2000       /* callback time histogram: 1 us buckets, last one open */
#define RB_TICKS 128               /* MIDI clock ticks kept for the tempo fit */
#define RB_FIT_TICKS 96            /* ticks in the tempo fit (four beats) */
#define RB_FIT_MIN 12              /* ticks a new run needs before its fit replaces an estimate */
#define RB_SLACK_FRAMES 64         /* a loop bar may run this far past its end before a bar line */
#define RB_OUT_OF_STEP 2           /* blocks in a row a transport may be out of step with JACK's clock */
#define RB_STALE_JUMP 8            /* blocks a master's BBT may lag after JACK's clock jumped ahead */
#define RB_RESYNC_FRAMES 16        /* a cursor further than this from its bar line is moved there */

enum rb_source { RB_SOURCE_NONE, RB_SOURCE_TRANSPORT, RB_SOURCE_MIDI, RB_SOURCE_EXTERNAL, RB_SOURCE_OWN };

enum rb_command_kind {
    RB_CMD_NEXT = 1,        /* loop: offer as the next clip (id 0: withdraw the offer) */
    RB_CMD_REFIT,           /* loop: a refit of the playing clip (same serial, higher version) */
    RB_CMD_BUSY,            /* i: the worker is making a newer clip */
    RB_CMD_GAIN,            /* a: output gain, ramped over one block */
    RB_CMD_OWN_TEMPO,       /* a: frames per bar of our own clock, from its next bar line */
    RB_CMD_TIMEBASE,        /* a: bpm, b: beats per bar, c: beat type; published from the next bar */
    RB_CMD_FREE_RUN,        /* i: keep playing on our own clock while the transport is stopped */
    RB_CMD_MIDI_METER,      /* i: MIDI clock ticks per bar */
    RB_CMD_SAMPLE_RATE,     /* i: sample rate */
    RB_CMD_EXTERNAL,        /* i: bar, a: its start (JACK frame), b: frames per bar, c: rolling */
    RB_CMD_EXTERNAL_CLEAR,  /* the external source is gone */
    RB_CMD_BURN             /* i: microseconds the next JACK callback spins (fault injection: an overrun of ours) */
};

/* A loop as the core sees it: two channels of frames + tail floats each. */
typedef struct {
    int64_t id;             /* Python's handle; 0 = no loop */
    const float *left;
    const float *right;
    int32_t frames;         /* loop length without the tail */
    int32_t tail;           /* frames readable after the end (reflected) */
    int32_t bars;
    int32_t beats_per_bar;
    int32_t serial;
    int32_t version;
} rb_loop;

typedef struct {
    int32_t kind;
    int32_t pad;
    rb_loop loop;
    double a, b, c;
    int64_t i;
} rb_command;

/* One loop start. `into`: frames into the bar it started at (0 on a bar line); `offset`: the
 * loop frame it started from (0 on a loop boundary). */
typedef struct {
    int64_t frame, jack_frame, bar;
    int32_t serial, is_new, into, version, offset, pad;
} rb_clip_start;

typedef struct {
    int64_t jack_frame, frame, bar;
    double frames_per_bar;
    int32_t source, pad;
} rb_bar_line;

typedef struct {
    int64_t jack_frame;
    int32_t frames;
    int32_t pad;
    int64_t start;          /* index of its first frame in the input ring */
} rb_input_block;

typedef struct {
    int64_t jack_frame;
    int32_t size;
    uint8_t data[4];
} rb_midi_message;

typedef struct {
    int32_t offset;
    int32_t size;
    uint8_t data[4];
} rb_event;

/* Where one block lies on the bar grid (refilled each block). */
typedef struct {
    int32_t rolling, relocated, source, bar_offset;
    int64_t frame, jack_frame, bar;
    int64_t into;           /* frames from the start of the bar in progress to the block start */
    double frames_per_bar;
} rb_position;

typedef struct {
    int64_t anchor_bar, next_bar, expected_frame, last_frame;
    int32_t out_of_step;    /* blocks in a row put down to a late timebase master */
    int32_t behind;         /* blocks the last block's stale BBT was behind (0: it was not) */
    double anchor_frame, frames_per_bar;
} rb_grid;

typedef struct {
    int64_t origin_bar;
    double origin_frame, frames_per_bar, requested;
} rb_own_clock;

typedef struct {
    int32_t running, relocated, ticks_per_bar, bar_offset;
    int64_t tick;           /* musical tick since start / song position */
    int64_t index;          /* every tick seen, lost ones counted in */
    int64_t bar;
    int64_t seen;           /* ticks received */
    int64_t lost;           /* ticks found missing and counted in */
    int64_t owed;           /* of those, ticks that may still come late, in a burst */
    int64_t run_start;      /* first entry of the current run of steady ticks */
    int64_t tick_index[RB_TICKS];
    int64_t tick_frame[RB_TICKS];
    double frames_per_tick; /* fitted; 0 until three ticks */
    int64_t into;           /* frames into the bar at the block start */
    int64_t lined;          /* bar tick whose line was placed by prediction (it came late or never) */
} rb_midi_clock;

typedef struct {
    int32_t valid, rolling;
    int64_t bar;
    double bar_start, frames_per_bar;
} rb_external;

typedef struct {
    rb_own_clock clock;
    int32_t sample_rate, pad0;
    double bpm, beats_per_bar, beat_type;
    double req_bpm, req_beats_per_bar, req_beat_type;
    int32_t pending, pad;
    int64_t armed;          /* bar of the first fill after a request; -1 none */
} rb_timebase;

typedef struct {
    rb_loop current, next, refit;
    int32_t busy, restart, silent, bar_in_loop;
    int64_t cursor, bar;
    int32_t fade_frames, fade_which, fade_pos;
    int32_t located;        /* a start or locate since the last bar line */
    float fade_in[RB_MAX_FADE];
    float fade_out[RB_MAX_FADE];
    float fades[2][2][RB_MAX_FADE];
    float scratch[2][RB_MAX_FADE];
} rb_player;

typedef struct rb_core {
    /* settings (Python, before activation or through commands) */
    int32_t sample_rate, free_run, audio_in, master;
    /* JACK handles (0 offline) */
    jack_client_t *client;
    jack_port_t *out_l, *out_r, *midi_in, *in_l, *in_r;

    /* Python -> core */
    rb_command commands[RB_COMMANDS];
    int64_t commands_written, commands_read;

    /* core -> Python */
    int64_t retired[RB_RETIRED];
    int64_t retired_written, retired_read, retired_lost;
    rb_midi_message midi[RB_MIDI_SLOTS];
    int64_t midi_written, midi_read, midi_dropped;
    rb_clip_start clips[RB_CLIP_LOG];
    int64_t clips_written;
    rb_bar_line bars[RB_BAR_LOG];
    int64_t bars_written, bars_read, bars_lost;
    float input[2][RB_INPUT_FRAMES];
    rb_input_block input_blocks[RB_INPUT_BLOCKS];
    int64_t input_frames_written, input_frames_read, input_blocks_written, input_blocks_read, input_dropped;

    /* counters and readings (core writes, Python reads) */
    int64_t blocks, xruns, late, underruns, resyncs, clips_started, repeats, own_frame;
    int64_t callback_max_us, start_delay_max;
    int64_t burn_us;        /* fault injection: the next JACK callback spins this long */
    int64_t histogram[RB_HIST_BUCKETS];
    int32_t tempo_source, transport_held;
    double transport_bpm, transport_beats_per_bar, transport_beat_type;

    /* realtime state */
    float gain_target, gain;
    rb_position position;
    rb_grid grid;
    rb_own_clock own;
    rb_midi_clock midi_clock;
    rb_external external;
    rb_timebase timebase;
    rb_player player;
    rb_event events[RB_BLOCK_EVENTS];
    float block[2][RB_MAX_BLOCK];
} rb_core;

/* Set up (outside the realtime thread): clears the whole struct, touching every page. */
void rb_init(rb_core *core, int32_t sample_rate, double own_frames_per_bar, const float *fade_in,
             const float *fade_out, int32_t fade_frames, int32_t free_run);
void rb_timebase_init(rb_timebase *tb, int32_t sample_rate, double bpm, double beats_per_bar, double beat_type);
/* Ask for a new tempo and meter from the next bar line on (offline use; live: RB_CMD_TIMEBASE). */
void rb_timebase_request(rb_timebase *tb, double bpm, double beats_per_bar, double beat_type);

/* Python side of the rings (one Python thread at a time per ring). */
int rb_push_command(rb_core *core, const rb_command *command);
int64_t rb_pop_retired(rb_core *core);
int rb_pop_midi(rb_core *core, rb_midi_message *out);
int rb_pop_bar_line(rb_core *core, rb_bar_line *out);
int rb_pop_input(rb_core *core, rb_input_block *out, float *left, float *right, int32_t max_frames);
void rb_reset_callback_times(rb_core *core);

/* One block. Realtime safe. `pos` may be NULL (no transport); `in_l`/`in_r` may be NULL. */
void rb_process(rb_core *core, int32_t frames, int32_t transport_state, const jack_position_t *pos,
                int32_t event_count, int64_t jack_frame, float *out_l, float *out_r,
                const float *in_l, const float *in_r);
/* Fill BBT of a timebase we keep for transport frame `frame`. Realtime safe. */
void rb_timebase_fill(rb_timebase *tb, jack_position_t *pos, int64_t frame);

/* JACK callbacks; register them with libjack with the core as their argument. */
int rb_jack_process(jack_nframes_t nframes, void *arg);
void rb_jack_timebase(jack_transport_state_t state, jack_nframes_t nframes, jack_position_t *pos,
                      int new_pos, void *arg);
int rb_jack_xrun(void *arg);

#endif
