"""cffi build of the native realtime core (API mode, compiled at install against libjack).

``setup.py`` names this module in ``cffi_modules``, so ``pip install`` compiles
``core.c`` into the extension ``bridge.live._core``. Only the declarations below are visible
from Python; everything else in ``core.h`` stays C.
"""

from __future__ import annotations

from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent

CDEF = """
typedef uint32_t jack_nframes_t;
typedef struct _jack_client jack_client_t;
typedef struct _jack_port jack_port_t;
typedef enum { JackTransportStopped = 0, JackTransportRolling = 1, JackTransportStarting = 3, ... } jack_transport_state_t;
typedef struct {
    jack_nframes_t frame;
    int valid;
    int32_t bar, beat, tick;
    double bar_start_tick;
    float beats_per_bar, beat_type;
    double ticks_per_beat, beats_per_minute;
    jack_nframes_t bbt_offset;
    ...;
} jack_position_t;

#define RB_MAX_BLOCK ...
#define RB_MAX_FADE ...
#define RB_HIST_BUCKETS ...
#define RB_CLIP_LOG ...
#define RB_BLOCK_EVENTS ...
enum rb_source { RB_SOURCE_NONE, RB_SOURCE_TRANSPORT, RB_SOURCE_MIDI, RB_SOURCE_EXTERNAL, RB_SOURCE_OWN };
enum rb_command_kind { RB_CMD_NEXT, RB_CMD_REFIT, RB_CMD_BUSY, RB_CMD_GAIN, RB_CMD_OWN_TEMPO,
    RB_CMD_TIMEBASE, RB_CMD_FREE_RUN, RB_CMD_MIDI_METER, RB_CMD_SAMPLE_RATE, RB_CMD_EXTERNAL,
    RB_CMD_EXTERNAL_CLEAR, RB_CMD_BURN };

typedef struct {
    int64_t id; const float *left; const float *right;
    int32_t frames, tail, bars, beats_per_bar, serial, version;
} rb_loop;
typedef struct { int32_t kind; rb_loop loop; double a, b, c; int64_t i; ...; } rb_command;
typedef struct { int64_t frame, jack_frame, bar; int32_t serial, is_new, into, version, offset; ...; } rb_clip_start;
typedef struct { int64_t jack_frame, frame, bar; double frames_per_bar; int32_t source; ...; } rb_bar_line;
typedef struct { int64_t jack_frame; int32_t frames; int64_t start; ...; } rb_input_block;
typedef struct { int64_t jack_frame; int32_t size; uint8_t data[4]; } rb_midi_message;
typedef struct { int32_t offset; int32_t size; uint8_t data[4]; } rb_event;
typedef struct { int32_t rolling, relocated, source, bar_offset; int64_t frame, jack_frame, bar, into;
                 double frames_per_bar; } rb_position;
typedef struct { int64_t origin_bar; double origin_frame, frames_per_bar, requested; } rb_own_clock;
typedef struct { int32_t running, ticks_per_bar; int64_t tick, index, seen, lost, run_start; double frames_per_tick; ...; } rb_midi_clock;
typedef struct { double bpm, beats_per_bar, beat_type; int32_t pending; ...; } rb_timebase;
typedef struct { rb_loop current, next, refit; int32_t busy, restart, silent, bar_in_loop; int64_t cursor, bar;
                 ...; } rb_player;
typedef struct rb_core {
    int32_t sample_rate, free_run, audio_in, master;
    jack_client_t *client;
    jack_port_t *out_l, *out_r, *midi_in, *in_l, *in_r;
    int64_t retired_lost, midi_dropped, clips_written, bars_lost, input_dropped;
    int64_t blocks, xruns, late, underruns, resyncs, clips_started, repeats, own_frame;
    int64_t callback_max_us, start_delay_max;
    int64_t histogram[];
    int32_t tempo_source, transport_held;
    double transport_bpm, transport_beats_per_bar, transport_beat_type;
    float gain_target, gain;
    rb_position position;
    rb_own_clock own;
    rb_midi_clock midi_clock;
    rb_timebase timebase;
    rb_player player;
    rb_event events[];
    rb_clip_start clips[];
    ...;
} rb_core;

void rb_init(rb_core *core, int32_t sample_rate, double own_frames_per_bar, const float *fade_in,
             const float *fade_out, int32_t fade_frames, int32_t free_run);
void rb_timebase_init(rb_timebase *tb, int32_t sample_rate, double bpm, double beats_per_bar, double beat_type);
void rb_timebase_request(rb_timebase *tb, double bpm, double beats_per_bar, double beat_type);
void rb_timebase_fill(rb_timebase *tb, jack_position_t *pos, int64_t frame);
int rb_push_command(rb_core *core, const rb_command *command);
int64_t rb_pop_retired(rb_core *core);
int rb_pop_midi(rb_core *core, rb_midi_message *out);
int rb_pop_bar_line(rb_core *core, rb_bar_line *out);
int rb_pop_input(rb_core *core, rb_input_block *out, float *left, float *right, int32_t max_frames);
void rb_reset_callback_times(rb_core *core);
void rb_process(rb_core *core, int32_t frames, int32_t transport_state, const jack_position_t *pos,
                int32_t event_count, int64_t jack_frame, float *out_l, float *out_r,
                const float *in_l, const float *in_r);

int rb_jack_process(jack_nframes_t nframes, void *arg);
void rb_jack_timebase(jack_transport_state_t state, jack_nframes_t nframes, jack_position_t *pos,
                      int new_pos, void *arg);
int rb_jack_xrun(void *arg);
int rb_thread_cpu_clock(jack_client_t *client);

typedef int (*JackProcessCallback)(jack_nframes_t nframes, void *arg);
typedef int (*JackXRunCallback)(void *arg);
typedef void (*JackTimebaseCallback)(jack_transport_state_t state, jack_nframes_t nframes,
                                     jack_position_t *pos, int new_pos, void *arg);
int jack_set_process_callback(jack_client_t *client, JackProcessCallback callback, void *arg);
int jack_set_xrun_callback(jack_client_t *client, JackXRunCallback callback, void *arg);
int jack_set_timebase_callback(jack_client_t *client, int conditional, JackTimebaseCallback callback, void *arg);
"""

#: Outside core.c (it makes a library call the callback must not): the Linux CPU-time clock of
#: the client's realtime thread, for :class:`bridge.live.overruns.OverrunWatch`; -1 if none.
THREAD_CLOCK = """
#include <pthread.h>
#include <time.h>
#include "core.h"

int rb_thread_cpu_clock(jack_client_t *client)
{
    clockid_t clock;
    jack_native_thread_t thread = client ? jack_client_thread_id(client) : 0;
    if (thread == 0 || pthread_getcpuclockid(thread, &clock) != 0)
        return -1;
    return (int)clock;
}
"""

ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source(
    "bridge.live._core",
    THREAD_CLOCK,
    sources=["bridge/live/core.c"],
    include_dirs=[str(HERE)],
    libraries=["jack"],
    extra_compile_args=["-O2", "-std=gnu11", "-Wall"],
)
