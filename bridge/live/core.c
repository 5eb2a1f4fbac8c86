/*
 * riff-bridge's realtime core. The contract is in core.h; per block, rb_process:
 *   1. applies Python's commands (offers, gain, tempo requests);
 *   2. reads midi_in: clock bytes (F8/FA/FB/FC/F2) drive the MIDI clock, others go to Python;
 *   3. places the block on the bar grid of the first tempo source available: JACK transport
 *      with BBT (a timebase master; its last grid is held if it disappears while rolling), MIDI
 *      clock, an external grid (Ableton Link, set by Python), our own clock;
 *   4. plays the loops: every bar starts on its bar line; loops are locked to the grid's
 *      phrases (bar k of an N-bar loop on bars = k mod N); a phrase's first bar starts the
 *      offered clip or repeats the current one (late when the worker is busy); a bar that outlasts its
 *      material repeats its last beat, one cut short is crossfaded at the line; a start or
 *      locate inside a bar plays from the matching offset; every jump is an equal-power
 *      crossfade;
 *   5. applies the gain ramp, captures in_L/in_R, logs bar lines and loop starts, counts.
 */
#include <string.h>
#include "core.h"

#define LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

enum { CLOCK = 0xF8, START = 0xFA, CONTINUE = 0xFB, STOP = 0xFC, SONG_POSITION = 0xF2 };
#define TRANSPORT_ROLLING 1
#define TICKS_PER_BEAT 1920.0
#define CLOCK_TIMEOUT_SECONDS 0.5

/* -- arithmetic without libm ------------------------------------------------------------------ */

static int64_t rb_floor(double x)
{
    int64_t i = (int64_t)x;
    return i - (x < (double)i);
}

/* Nearest integer, ties to even (as Python's round). */
static int64_t rb_round(double x)
{
    int64_t i = rb_floor(x);
    double rest = x - (double)i;
    if (rest > 0.5 || (rest == 0.5 && (i & 1)))
        i++;
    return i;
}

static double rb_abs(double x) { return x < 0 ? -x : x; }
static int64_t rb_min(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t rb_max(int64_t a, int64_t b) { return a > b ? a : b; }

/* -- set-up (ordinary threads) ---------------------------------------------------------------- */

void rb_init(rb_core *core, int32_t sample_rate, double own_frames_per_bar, const float *fade_in,
             const float *fade_out, int32_t fade_frames, int32_t free_run)
{
    memset(core, 0, sizeof *core);
    core->sample_rate = sample_rate;
    core->free_run = free_run;
    core->gain = core->gain_target = 1.0f;
    core->own.frames_per_bar = core->own.requested = own_frames_per_bar;
    core->grid.expected_frame = -1;
    core->grid.last_frame = -1;
    core->midi_clock.ticks_per_bar = 96;
    core->midi_clock.bar_offset = -1;
    core->midi_clock.lined = -1;
    core->player.restart = core->player.silent = 1;
    core->player.fade_frames = fade_frames;
    core->player.fade_pos = fade_frames;
    memcpy(core->player.fade_in, fade_in, sizeof(float) * (size_t)fade_frames);
    memcpy(core->player.fade_out, fade_out, sizeof(float) * (size_t)fade_frames);
    rb_timebase_init(&core->timebase, sample_rate, 120.0, 4.0, 4.0);
}

void rb_timebase_init(rb_timebase *tb, int32_t sample_rate, double bpm, double beats_per_bar, double beat_type)
{
    tb->sample_rate = sample_rate;
    tb->bpm = tb->req_bpm = bpm;
    tb->beats_per_bar = tb->req_beats_per_bar = beats_per_bar;
    tb->beat_type = tb->req_beat_type = beat_type;
    tb->clock.origin_bar = 0;
    tb->clock.origin_frame = 0.0;
    tb->clock.frames_per_bar = tb->clock.requested = beats_per_bar * 60.0 * sample_rate / bpm;
    tb->pending = 0;
    tb->armed = -1;
}

int rb_push_command(rb_core *core, const rb_command *command)
{
    int64_t written = core->commands_written;
    if (written - LOAD(&core->commands_read) >= RB_COMMANDS)
        return 0;
    core->commands[written % RB_COMMANDS] = *command;
    STORE(&core->commands_written, written + 1);
    return 1;
}

int64_t rb_pop_retired(rb_core *core)
{
    int64_t read = core->retired_read;
    if (read >= LOAD(&core->retired_written))
        return 0;
    int64_t id = core->retired[read % RB_RETIRED];
    STORE(&core->retired_read, read + 1);
    return id;
}

int rb_pop_midi(rb_core *core, rb_midi_message *out)
{
    int64_t read = core->midi_read;
    if (read >= LOAD(&core->midi_written))
        return 0;
    *out = core->midi[read % RB_MIDI_SLOTS];
    STORE(&core->midi_read, read + 1);
    return 1;
}

int rb_pop_bar_line(rb_core *core, rb_bar_line *out)
{
    int64_t read = core->bars_read;
    if (read >= LOAD(&core->bars_written))
        return 0;
    *out = core->bars[read % RB_BAR_LOG];
    STORE(&core->bars_read, read + 1);
    return 1;
}

/* The next captured block (up to max_frames of it) into left/right; returns its frame count. */
int rb_pop_input(rb_core *core, rb_input_block *out, float *left, float *right, int32_t max_frames)
{
    int64_t read = core->input_blocks_read;
    if (read >= LOAD(&core->input_blocks_written))
        return 0;
    *out = core->input_blocks[read % RB_INPUT_BLOCKS];
    int32_t frames = out->frames < max_frames ? out->frames : max_frames;
    for (int32_t k = 0; k < frames; k++) {
        int64_t slot = (out->start + k) % RB_INPUT_FRAMES;
        left[k] = core->input[0][slot];
        right[k] = core->input[1][slot];
    }
    STORE(&core->input_frames_read, out->start + out->frames);
    STORE(&core->input_blocks_read, read + 1);
    return frames;
}

void rb_reset_callback_times(rb_core *core)
{
    memset(core->histogram, 0, sizeof core->histogram);
    core->callback_max_us = 0;
    core->start_delay_max = 0;
}

/* -- rings written by the core ---------------------------------------------------------------- */

static void retire(rb_core *core, int64_t id)
{
    rb_player *p = &core->player;
    if (id == 0 || id == p->current.id || id == p->next.id || id == p->refit.id)
        return;
    int64_t written = core->retired_written;
    if (written - LOAD(&core->retired_read) >= RB_RETIRED) {
        core->retired_lost++;
        return;
    }
    core->retired[written % RB_RETIRED] = id;
    STORE(&core->retired_written, written + 1);
}

/* Replace a player slot, retiring what it held when nothing else holds it. */
static void set_slot(rb_core *core, rb_loop *slot, const rb_loop *loop)
{
    int64_t old = slot->id;
    if (loop)
        *slot = *loop;
    else
        memset(slot, 0, sizeof *slot);
    if (old != slot->id)
        retire(core, old);
}

static void push_midi(rb_core *core, int64_t frame, const uint8_t *data, int32_t size)
{
    int64_t written = core->midi_written;
    if (size < 1 || size > 3 || written - LOAD(&core->midi_read) >= RB_MIDI_SLOTS) {
        core->midi_dropped++;
        return;
    }
    rb_midi_message *m = &core->midi[written % RB_MIDI_SLOTS];
    m->jack_frame = frame;
    m->size = size;
    memcpy(m->data, data, (size_t)size);
    STORE(&core->midi_written, written + 1);
}

static void log_bar_line(rb_core *core, const rb_position *pos)
{
    int64_t written = core->bars_written;
    if (written - LOAD(&core->bars_read) >= RB_BAR_LOG) {
        core->bars_lost++;
        return;
    }
    rb_bar_line *b = &core->bars[written % RB_BAR_LOG];
    b->jack_frame = pos->jack_frame + pos->bar_offset;
    b->frame = pos->frame + pos->bar_offset;
    b->bar = pos->bar;
    b->frames_per_bar = pos->frames_per_bar;
    b->source = pos->source;
    STORE(&core->bars_written, written + 1);
}

static void log_clip_start(rb_core *core, int64_t frame, int64_t jack_frame, int64_t bar,
                           const rb_loop *loop, int32_t is_new, int64_t into)
{
    int64_t written = core->clips_written;
    rb_clip_start *c = &core->clips[written % RB_CLIP_LOG];
    c->frame = frame;
    c->jack_frame = jack_frame;
    c->bar = bar;
    c->serial = loop->serial;
    c->version = loop->version;
    c->is_new = is_new;
    c->into = (int32_t)into;
    c->offset = (int32_t)core->player.cursor;
    STORE(&core->clips_written, written + 1);
}

static void capture_input(rb_core *core, int32_t frames, int64_t jack_frame, const float *l, const float *r)
{
    int64_t written = core->input_frames_written;
    int64_t blocks = core->input_blocks_written;
    if (written + frames - LOAD(&core->input_frames_read) > RB_INPUT_FRAMES
        || blocks - LOAD(&core->input_blocks_read) >= RB_INPUT_BLOCKS) {
        core->input_dropped += frames;
        return;
    }
    for (int32_t k = 0; k < frames; k++) {
        int64_t slot = (written + k) % RB_INPUT_FRAMES;
        core->input[0][slot] = l[k];
        core->input[1][slot] = r[k];
    }
    rb_input_block *b = &core->input_blocks[blocks % RB_INPUT_BLOCKS];
    b->jack_frame = jack_frame;
    b->frames = frames;
    b->start = written;
    core->input_frames_written = written + frames;
    STORE(&core->input_blocks_written, blocks + 1);
}

/* -- the bar grid ----------------------------------------------------------------------------- */

static double grid_start_of(const rb_grid *g, int64_t bar)
{
    return g->anchor_frame + (double)(bar - g->anchor_bar) * g->frames_per_bar;
}

/* Re-anchor on `bar`; returns 1 when the musical position jumped (not just the tempo). */
static int grid_anchor(rb_grid *g, int64_t frame, int64_t bar, double bar_start, double fpb, int continuous)
{
    int jumped = !continuous || !(g->next_bar - 1 <= bar && bar <= g->next_bar);
    g->anchor_bar = bar;
    g->anchor_frame = bar_start;
    g->frames_per_bar = fpb;
    int64_t first = rb_round(bar_start) >= frame ? bar : bar + 1;
    g->next_bar = jumped ? first : rb_max(g->next_bar, first);
    return jumped;
}

/* Stable bar lines from one position report: the block's first frame, the bar containing it,
 * the frame where that bar started, frames per bar. At most one line per block. */
static void grid_update(rb_grid *g, rb_position *out, int64_t frame, int32_t frames, int64_t bar,
                        double bar_start, double fpb, double tolerance)
{
    int continuous = frame == g->expected_frame;
    int agrees = fpb == g->frames_per_bar && rb_abs(grid_start_of(g, bar) - bar_start) <= tolerance;
    if (!continuous || !agrees)
        out->relocated |= grid_anchor(g, frame, bar, bar_start, fpb, continuous);
    else if (bar_start < grid_start_of(g, bar))
        g->anchor_frame -= grid_start_of(g, bar) - bar_start;
    g->expected_frame = frame + frames;
    g->last_frame = frame;
    int64_t line = rb_round(grid_start_of(g, g->next_bar)) - frame;
    out->frames_per_bar = g->frames_per_bar;
    if (line < frames) {
        out->bar_offset = (int32_t)(line > 0 ? line : 0);
        out->bar = g->next_bar;
        out->into = out->bar_offset == 0 ? 0 : frame - rb_round(grid_start_of(g, g->next_bar - 1));
        g->next_bar++;
    } else {
        out->bar_offset = -1;
        out->bar = g->next_bar - 1;
        out->into = frame - rb_round(grid_start_of(g, out->bar));
    }
    if (out->into < 0)
        out->into = 0;
}

static void position_clear(rb_position *pos, int64_t frame, int32_t source)
{
    pos->rolling = 0;
    pos->frame = frame;
    pos->bar_offset = -1;
    pos->relocated = 0;
    pos->source = source;
    pos->into = 0;
}

/* -- our own clock ---------------------------------------------------------------------------- */

static void own_locate(const rb_own_clock *c, int64_t frame, int64_t *bar, double *start)
{
    *bar = c->origin_bar + rb_floor(((double)frame - c->origin_frame) / c->frames_per_bar);
    *start = c->origin_frame + (double)(*bar - c->origin_bar) * c->frames_per_bar;
}

static void own_on_bar_line(rb_own_clock *c, int64_t bar, double frame)
{
    if (c->requested != c->frames_per_bar) {
        c->origin_bar = bar;
        c->origin_frame = frame;
        c->frames_per_bar = c->requested;
    }
}

/* -- MIDI clock ------------------------------------------------------------------------------- */

/* Tempo: least-squares fit of tick frames on tick indices over the current run of steady ticks
 * (lost ticks counted in). A new run keeps the previous estimate until it has RB_FIT_MIN ticks. */
static void clock_fit(rb_midi_clock *m)
{
    int64_t n = rb_min(m->seen - m->run_start, RB_FIT_TICKS);
    if (n < 3 || (m->frames_per_tick > 0 && n < RB_FIT_MIN))
        return;
    double si = 0, sf = 0, sii = 0, sif = 0;
    int64_t i0 = m->tick_index[(m->seen - 1) % RB_TICKS], f0 = m->tick_frame[(m->seen - 1) % RB_TICKS];
    for (int64_t k = m->seen - n; k < m->seen; k++) {
        double i = (double)(m->tick_index[k % RB_TICKS] - i0), f = (double)(m->tick_frame[k % RB_TICKS] - f0);
        si += i; sf += f; sii += i * i; sif += i * f;
    }
    double den = n * sii - si * si;
    if (den > 0)
        m->frames_per_tick = (n * sif - si * sf) / den;
}

/* A new run of ticks from the next one (after a pause, Stop/Continue/Start, a song position, or a
 * tempo change): its first tick counts as one, whatever the gap before it. */
static void clock_new_run(rb_midi_clock *m)
{
    m->run_start = m->seen;
    m->owed = 0;
}

/* Ticks this one stands for: 1, or more when ticks were lost. A gap that is not close to a whole
 * number of periods is a tempo change, not a loss: a new run starts at the previous tick. A tick
 * less than half a period after the one before is never a tempo change: a sender that ran late
 * sends what it owes in a burst. It is one of the ticks just counted as lost (0: counted
 * already), or else a tick of its own. */
static int64_t clock_advance(rb_midi_clock *m, int64_t frame, int32_t rate)
{
    if (m->seen == m->run_start)
        return 1;
    int64_t gap = frame - m->tick_frame[(m->seen - 1) % RB_TICKS];
    if (gap >= CLOCK_TIMEOUT_SECONDS * rate) {
        clock_new_run(m);
        return 1;
    }
    if (m->frames_per_tick <= 0)
        return 1;
    double ratio = (double)gap / m->frames_per_tick;
    if (ratio < 0.5) {
        if (m->owed > 0) {
            m->owed--;
            return 0;
        }
        return 1;
    }
    int64_t whole = rb_round(ratio);
    if (whole >= 1 && whole <= 8 && rb_abs(ratio - (double)whole) <= 0.35) {
        m->owed = whole - 1;
        return whole;
    }
    m->owed = 0;
    m->run_start = m->seen - 1;
    m->frames_per_tick = (double)gap;
    return 1;
}

static void clock_tick(rb_midi_clock *m, int32_t offset, int64_t frame, int32_t rate)
{
    int64_t advance = clock_advance(m, frame, rate);
    m->lost += advance - 1;
    if (advance == 0)
        return; /* counted already, when it was found missing; kept out of the fit */
    m->index += advance;
    m->tick_index[m->seen % RB_TICKS] = m->index;
    m->tick_frame[m->seen % RB_TICKS] = frame;
    m->seen++;
    clock_fit(m);
    if (!m->running)
        return;
    for (int64_t k = 0; k < advance; k++, m->tick++) {
        if (m->tick % m->ticks_per_bar == 0 && m->bar_offset < 0 && m->lined != m->tick) {
            int64_t early = rb_round((double)(advance - 1 - k) * m->frames_per_tick);
            m->bar_offset = (int32_t)rb_max(0, offset - early);
            m->bar = m->tick / m->ticks_per_bar;
        }
    }
}

/* The bar tick is due in this block but has not come by a quarter tick after its time: lost or
 * late. Its bar line goes where the fit puts it; the tick, if it still comes, adds no second one. */
static void clock_predict(rb_midi_clock *m, int64_t jack_frame, int32_t frames)
{
    if (!m->running || m->frames_per_tick <= 0 || m->seen == m->run_start || m->bar_offset >= 0
        || m->tick % m->ticks_per_bar != 0 || m->lined == m->tick || m->tick == 0)
        return;
    double due = (double)m->tick_frame[(m->seen - 1) % RB_TICKS] + m->frames_per_tick;
    if (due + m->frames_per_tick / 4 >= (double)(jack_frame + frames))
        return;
    m->bar_offset = (int32_t)rb_max(0, rb_round(due) - jack_frame);
    m->bar = m->tick / m->ticks_per_bar;
    m->lined = m->tick;
}

static void clock_handle(rb_midi_clock *m, const rb_event *e, int64_t frame, int32_t rate)
{
    switch (e->data[0]) {
    case CLOCK: clock_tick(m, e->offset, frame, rate); return;
    case START: m->running = 1; m->tick = 0; m->relocated = 1; break;
    case CONTINUE: m->running = 1; m->relocated = 1; break;
    case STOP: m->running = 0; break;
    case SONG_POSITION:
        m->tick = (int64_t)(e->data[1] | (e->data[2] << 7)) * 6;
        m->relocated = 1;
        break;
    default: return;
    }
    m->lined = -1;
    clock_new_run(m);
}

static int clock_present(const rb_midi_clock *m, int64_t frame, int32_t rate)
{
    return m->seen > 0 && frame - m->tick_frame[(m->seen - 1) % RB_TICKS] < CLOCK_TIMEOUT_SECONDS * rate;
}

/* Frames from the bar in progress's start to the block start, from the last tick seen. */
static int64_t clock_into(const rb_midi_clock *m, int64_t jack_frame)
{
    if (m->seen == 0 || m->frames_per_tick <= 0 || m->tick == 0)
        return 0;
    int64_t last = m->tick_frame[(m->seen - 1) % RB_TICKS];
    int64_t into = rb_round((double)((m->tick - 1) % m->ticks_per_bar) * m->frames_per_tick) + (jack_frame - last);
    return into < 0 ? 0 : into;
}

static void clock_fill(const rb_midi_clock *m, rb_position *pos, int64_t jack_frame)
{
    pos->rolling = m->running;
    pos->relocated |= m->relocated;
    pos->bar_offset = m->bar_offset;
    pos->bar = m->bar_offset >= 0 ? m->bar : rb_max(0, m->tick - 1) / m->ticks_per_bar;
    pos->frames_per_bar = m->frames_per_tick * m->ticks_per_bar;
    pos->into = m->bar_offset >= 0 ? 0 : clock_into(m, jack_frame);
}

/* -- our timebase (when we are JACK timebase master) ------------------------------------------ */

void rb_timebase_request(rb_timebase *tb, double bpm, double beats_per_bar, double beat_type)
{
    tb->req_bpm = bpm;
    tb->req_beats_per_bar = beats_per_bar;
    tb->req_beat_type = beat_type;
    tb->pending = 1;
    tb->armed = -1;
}

static void timebase_locate(rb_timebase *tb, int64_t frame, int64_t *bar, double *start)
{
    own_locate(&tb->clock, frame, bar, start);
    if (!tb->pending)
        return;
    if (tb->armed < 0 || *bar < tb->armed) {
        tb->armed = *bar;
    } else if (*bar > tb->armed) {
        int64_t line = tb->armed + 1;
        tb->clock.requested = tb->req_beats_per_bar * 60.0 * tb->sample_rate / tb->req_bpm;
        own_on_bar_line(&tb->clock, line, tb->clock.origin_frame + (double)(line - tb->clock.origin_bar) * tb->clock.frames_per_bar);
        tb->bpm = tb->req_bpm;
        tb->beats_per_bar = tb->req_beats_per_bar;
        tb->beat_type = tb->req_beat_type;
        tb->pending = 0;
        tb->armed = -1;
        own_locate(&tb->clock, frame, bar, start);
    }
}

void rb_timebase_fill(rb_timebase *tb, jack_position_t *pos, int64_t frame)
{
    int64_t bar;
    double start;
    timebase_locate(tb, frame, &bar, &start);
    double frames_per_beat = 60.0 * tb->sample_rate / tb->bpm;
    double into = ((double)frame - start) / frames_per_beat;
    int64_t beat = rb_min(rb_floor(into), (int64_t)tb->beats_per_bar - 1);
    int64_t tick = rb_floor((into - (double)beat) * TICKS_PER_BEAT);
    pos->bar = (int32_t)(bar + 1);
    pos->beat = (int32_t)(beat + 1);
    pos->tick = (int32_t)rb_min(tick, (int64_t)TICKS_PER_BEAT - 1);
    pos->bar_start_tick = (double)bar * tb->beats_per_bar * TICKS_PER_BEAT;
    pos->beats_per_bar = (float)tb->beats_per_bar;
    pos->beat_type = (float)tb->beat_type;
    pos->ticks_per_beat = TICKS_PER_BEAT;
    pos->beats_per_minute = tb->bpm;
    pos->valid = JackPositionBBT;
}

/* -- commands --------------------------------------------------------------------------------- */

static void apply_command(rb_core *core, const rb_command *c)
{
    switch (c->kind) {
    case RB_CMD_NEXT: set_slot(core, &core->player.next, c->loop.id ? &c->loop : 0); break;
    case RB_CMD_REFIT: set_slot(core, &core->player.refit, c->loop.id ? &c->loop : 0); break;
    case RB_CMD_BUSY: core->player.busy = (int32_t)c->i; break;
    case RB_CMD_GAIN: core->gain_target = (float)c->a; break;
    case RB_CMD_OWN_TEMPO: core->own.requested = c->a; break;
    case RB_CMD_TIMEBASE: rb_timebase_request(&core->timebase, c->a, c->b, c->c); break;
    case RB_CMD_FREE_RUN: core->free_run = (int32_t)c->i; break;
    case RB_CMD_MIDI_METER: core->midi_clock.ticks_per_bar = (int32_t)(c->i > 0 ? c->i : 96); break;
    case RB_CMD_SAMPLE_RATE: core->sample_rate = core->timebase.sample_rate = (int32_t)c->i; break;
    case RB_CMD_EXTERNAL:
        core->external.valid = c->b > 0;
        core->external.bar = c->i;
        core->external.bar_start = c->a;
        core->external.frames_per_bar = c->b;
        core->external.rolling = c->c != 0;
        break;
    case RB_CMD_EXTERNAL_CLEAR: core->external.valid = 0; break;
    case RB_CMD_BURN: core->burn_us = c->i; break;
    }
}

static void apply_commands(rb_core *core)
{
    int64_t read = core->commands_read, written = LOAD(&core->commands_written);
    for (; read < written; read++)
        apply_command(core, &core->commands[read % RB_COMMANDS]);
    STORE(&core->commands_read, read);
}

/* -- placing the block ------------------------------------------------------------------------ */

static int bbt_usable(const jack_position_t *pos)
{
    return pos && (pos->valid & JackPositionBBT) && pos->beats_per_minute > 0 && pos->ticks_per_beat > 0
           && pos->beats_per_bar > 0 && pos->beat >= 1;
}

/* The bar lines of the grid in force, placed on `frame` (a jump when it is not the expected one). */
static void grid_follow_itself(rb_grid *g, rb_position *out, int32_t frames, int64_t frame)
{
    int64_t bar = g->anchor_bar + rb_floor(((double)frame - g->anchor_frame) / g->frames_per_bar);
    grid_update(g, out, frame, frames, bar, grid_start_of(g, bar), g->frames_per_bar, 1.0);
}

/* A late timebase master on a busy machine leaves JACK2's transport out of step with JACK's
 * clock for a block or more: the frame stands still for a block (then stays a block behind, or
 * catches up with a skip), and the BBT beside a frame may be a block or two old. A master that
 * misses cycles leaves its last BBT frozen while JACK moves the frame on, so that BBT falls one
 * more block behind each block, for as long as the master is late. Such blocks are not trusted:
 * a frame within one block of where the last one led (`expected_frame`) is taken to be there,
 * and a BBT that matches the grid a block or two back, or a frozen one, changes nothing; the
 * grid in force places the block. So a stand-still or a freeze that catches up is inaudible,
 * and a frame that stays behind is followed like a locate (a crossfaded jump back of one block,
 * placed by the grid in force) once it has lasted RB_OUT_OF_STEP blocks; a BBT that keeps a
 * new phase that long (not falling further behind) is followed as the master's new grid.
 * Returns the frame the grid in force places the block at, or -1 when the block's own frame
 * and BBT are used. */
static int64_t out_of_step(rb_grid *g, int64_t frame, int64_t bar, double bar_start, double fpb,
                           double tolerance)
{
    if (g->frames_per_bar <= 0 || g->last_frame < 0) {
        g->out_of_step = 0;
        g->behind = 0;
        return -1;
    }
    int64_t slip = frame - g->expected_frame, step = frame - g->last_frame, blocks = 0;
    int64_t block = g->expected_frame - g->last_frame;
    int slipped = slip != 0 && rb_abs((double)slip) <= (double)block;
    if (slip > block && fpb == g->frames_per_bar && block > 0) {
        /* JACK's clock jumped ahead (an xrun): the master may not have caught up yet, its BBT
         * whole blocks old. Placed by the grid in force at the reported frame (a jump all the
         * same); a master that really moved its bar lines is followed from the next block. */
        double behind = bar_start - grid_start_of(g, bar);
        int64_t late = rb_round(behind / (double)block);
        if (late >= 1 && late <= RB_STALE_JUMP && rb_abs(behind - (double)(late * block)) <= tolerance) {
            g->out_of_step = 0;
            g->behind = 0;
            return frame;
        }
    }
    int stale = 0, frozen = 0;
    if (slip == 0 && step > 0 && fpb == g->frames_per_bar && rb_abs(grid_start_of(g, bar) - bar_start) > tolerance) {
        blocks = rb_round((bar_start - grid_start_of(g, bar)) / (double)step);
        int matches = blocks >= 1 && rb_abs(bar_start - (double)(blocks * step) - grid_start_of(g, bar)) <= tolerance;
        frozen = matches && blocks == (int64_t)g->behind + 1;
        stale = matches && (blocks <= RB_OUT_OF_STEP || frozen);
    }
    g->behind = stale ? (int32_t)rb_min(blocks, INT32_MAX - 1) : 0;
    if (!slipped && !stale) {
        g->out_of_step = 0;
        return -1;
    }
    if (g->out_of_step >= RB_OUT_OF_STEP && !frozen) {
        /* it lasts: a transport that stays behind (or ahead) keeps the master's bar lines on its
         * own frames, so the grid in force places the reported frame (a jump, not a new grid);
         * a BBT that keeps its new phase is the master's new grid */
        g->out_of_step = 0;
        g->behind = 0;
        return slipped ? frame : -1;
    }
    if (g->out_of_step < RB_OUT_OF_STEP)
        g->out_of_step++;
    return g->expected_frame;
}

static void follow_transport(rb_core *core, int32_t frames, int32_t state, const jack_position_t *pos)
{
    rb_position *out = &core->position;
    core->tempo_source = RB_SOURCE_TRANSPORT;
    core->transport_held = 0;
    core->transport_bpm = pos->beats_per_minute;
    core->transport_beats_per_bar = pos->beats_per_bar;
    core->transport_beat_type = pos->beat_type;
    position_clear(out, pos->frame, RB_SOURCE_TRANSPORT);
    out->rolling = state == TRANSPORT_ROLLING;
    if (!out->rolling) {
        core->grid.last_frame = -1;
        return;
    }
    double frames_per_beat = 60.0 * core->sample_rate / pos->beats_per_minute;
    double into = ((pos->beat - 1) + pos->tick / pos->ticks_per_beat) * frames_per_beat;
    if (pos->valid & JackBBTFrameOffset)
        into += pos->bbt_offset;
    double fpb = frames_per_beat * pos->beats_per_bar, tolerance = 2.0 * frames_per_beat / pos->ticks_per_beat + 2.0;
    int64_t placed = out_of_step(&core->grid, pos->frame, pos->bar - 1, pos->frame - into, fpb, tolerance);
    if (placed >= 0) {
        out->frame = placed;
        grid_follow_itself(&core->grid, out, frames, placed);
    } else {
        grid_update(&core->grid, out, pos->frame, frames, pos->bar - 1, pos->frame - into, fpb, tolerance);
    }
}

/* The timebase master left while the transport rolls: keep its last grid (tempo and meter). */
static void hold_transport(rb_core *core, int32_t frames, int64_t frame)
{
    rb_grid *g = &core->grid;
    rb_position *out = &core->position;
    core->transport_held = 1;
    position_clear(out, frame, RB_SOURCE_TRANSPORT);
    out->rolling = 1;
    grid_follow_itself(g, out, frames, frame);
}

static void follow_own(rb_core *core, int32_t frames, int64_t frame, int rolling)
{
    rb_position *out = &core->position;
    position_clear(out, frame, RB_SOURCE_OWN);
    out->rolling = rolling;
    out->frames_per_bar = core->own.frames_per_bar;
    if (!rolling)
        return;
    int64_t bar;
    double start;
    own_locate(&core->own, frame, &bar, &start);
    grid_update(&core->grid, out, frame, frames, bar, start, core->own.frames_per_bar, 1.0);
    if (out->bar_offset >= 0)
        own_on_bar_line(&core->own, out->bar, (double)(frame + out->bar_offset));
}

static void follow_external(rb_core *core, int32_t frames, int64_t jack_frame)
{
    rb_external *x = &core->external;
    rb_position *out = &core->position;
    core->tempo_source = RB_SOURCE_EXTERNAL;
    position_clear(out, jack_frame, RB_SOURCE_EXTERNAL);
    out->rolling = x->rolling;
    out->frames_per_bar = x->frames_per_bar;
    if (!out->rolling)
        return;
    int64_t bar = x->bar + rb_floor(((double)jack_frame - x->bar_start) / x->frames_per_bar);
    double start = x->bar_start + (double)(bar - x->bar) * x->frames_per_bar;
    grid_update(&core->grid, out, jack_frame, frames, bar, start, x->frames_per_bar, 2.0);
}

static void locate(rb_core *core, int32_t frames, int32_t state, const jack_position_t *pos, int64_t jack_frame)
{
    rb_position *out = &core->position;
    int rolling = state == TRANSPORT_ROLLING;
    int64_t frame = pos ? (int64_t)pos->frame : core->own_frame;
    if (bbt_usable(pos)) {
        follow_transport(core, frames, state, pos);
    } else if (rolling && core->tempo_source == RB_SOURCE_TRANSPORT && core->grid.frames_per_bar > 0) {
        hold_transport(core, frames, frame);
    } else if (clock_present(&core->midi_clock, jack_frame, core->sample_rate)) {
        core->tempo_source = RB_SOURCE_MIDI;
        core->transport_held = 0;
        position_clear(out, jack_frame, RB_SOURCE_MIDI);
        clock_fill(&core->midi_clock, out, jack_frame);
    } else if (core->external.valid) {
        follow_external(core, frames, jack_frame);
    } else {
        core->tempo_source = RB_SOURCE_OWN;
        core->transport_held = 0;
        follow_own(core, frames, frame, rolling);
    }
    if (!out->rolling && core->free_run)
        follow_own(core, frames, core->own_frame, 1);
    out->jack_frame = jack_frame;
}

static void read_midi(rb_core *core, int32_t count, int64_t jack_frame)
{
    rb_midi_clock *clock = &core->midi_clock;
    clock->bar_offset = -1;
    clock->relocated = 0;
    for (int32_t k = 0; k < count; k++) {
        const rb_event *e = &core->events[k];
        uint8_t status = e->data[0];
        if (e->size >= 1 && e->size <= 3 && (status >= 0xF8 || status == SONG_POSITION))
            clock_handle(clock, e, jack_frame + e->offset, core->sample_rate);
        else
            push_midi(core, jack_frame + e->offset, e->data, e->size);
    }
}

static void read_midi_block(rb_core *core, int32_t count, int64_t jack_frame, int32_t frames)
{
    read_midi(core, count, jack_frame);
    clock_predict(&core->midi_clock, jack_frame, frames);
}

/* -- the player ------------------------------------------------------------------------------- */

static int64_t bar_frame(const rb_loop *loop, int64_t bar_in_loop)
{
    return rb_round((double)bar_in_loop * loop->frames / loop->bars);
}

/* out[start..start+count) faded in, plus source from `position` faded out. */
static void mix_fade(rb_player *p, float *out_l, float *out_r, int32_t count, int which, int32_t position)
{
    const float *fi = p->fade_in + position, *fo = p->fade_out + position;
    const float *sl = p->fades[which][0] + position, *sr = p->fades[which][1] + position;
    for (int32_t k = 0; k < count; k++) {
        out_l[k] = out_l[k] * fi[k] + sl[k] * fo[k];
        out_r[k] = out_r[k] * fi[k] + sr[k] * fo[k];
    }
}

/* Capture the next fade_frames of what plays now as the fading-out source. */
static void begin_fade(rb_player *p)
{
    int32_t n = p->fade_frames;
    int target = p->fade_which ^ 1;
    float *tl = p->fades[target][0], *tr = p->fades[target][1];
    const rb_loop *loop = &p->current;
    if (p->silent || loop->id == 0) {
        memset(tl, 0, sizeof(float) * (size_t)n);
        memset(tr, 0, sizeof(float) * (size_t)n);
    } else {
        int64_t start = rb_min(p->cursor, (int64_t)loop->frames + loop->tail - n);
        memcpy(tl, loop->left + start, sizeof(float) * (size_t)n);
        memcpy(tr, loop->right + start, sizeof(float) * (size_t)n);
    }
    if (p->fade_pos < n) {
        /* a fade still running: the new source is the old mix continued */
        int32_t rest = n - p->fade_pos;
        const float *fi = p->fade_in + p->fade_pos, *fo = p->fade_out + p->fade_pos;
        const float *sl = p->fades[p->fade_which][0] + p->fade_pos, *sr = p->fades[p->fade_which][1] + p->fade_pos;
        for (int32_t k = 0; k < rest; k++) {
            tl[k] = tl[k] * fi[k] + sl[k] * fo[k];
            tr[k] = tr[k] * fi[k] + sr[k] * fo[k];
        }
    }
    p->fade_which = target;
    p->fade_pos = 0;
}

static void jump(rb_core *core, const rb_loop *loop, int64_t cursor)
{
    rb_player *p = &core->player;
    begin_fade(p);
    if (loop != &p->current)
        set_slot(core, &p->current, loop);
    p->cursor = cursor;
    p->silent = 0;
}

static void fade(rb_player *p, float *l, float *r, int32_t count)
{
    int32_t n = p->fade_frames - p->fade_pos;
    if (count < n)
        n = count;
    if (n > 0) {
        mix_fade(p, l, r, n, p->fade_which, p->fade_pos);
        p->fade_pos += n;
    }
}

/* Play the current loop into [start, stop) of the block, keeping the cursor inside its bar. */
static void play(rb_core *core, int32_t start, int32_t stop)
{
    rb_player *p = &core->player;
    float *l = core->block[0], *r = core->block[1];
    if (p->silent || p->current.id == 0) {
        memset(l + start, 0, sizeof(float) * (size_t)(stop - start));
        memset(r + start, 0, sizeof(float) * (size_t)(stop - start));
        fade(p, l + start, r + start, stop - start);
        return;
    }
    while (start < stop) {
        const rb_loop *loop = &p->current;
        int64_t begin = bar_frame(loop, p->bar_in_loop);
        int64_t limit = bar_frame(loop, p->bar_in_loop + 1) + RB_SLACK_FRAMES;
        if (p->cursor >= limit) {
            /* the bar outlasts its material (the tempo slowed): repeat its last beat */
            int64_t beat = (limit - RB_SLACK_FRAMES - begin) / (loop->beats_per_bar > 0 ? loop->beats_per_bar : 1);
            core->repeats++;
            jump(core, loop, rb_max(begin, p->cursor - RB_SLACK_FRAMES - beat));
        }
        int32_t count = (int32_t)rb_min(stop - start, limit - p->cursor);
        memcpy(l + start, loop->left + p->cursor, sizeof(float) * (size_t)count);
        memcpy(r + start, loop->right + p->cursor, sizeof(float) * (size_t)count);
        fade(p, l + start, r + start, count);
        p->cursor += count;
        start += count;
    }
}

static const rb_loop *take_refit(rb_player *p)
{
    const rb_loop *refit = &p->refit;
    if (refit->id == 0 || p->current.id == 0 || refit->serial != p->current.serial
        || refit->version <= p->current.version)
        return 0;
    return refit;
}

/* The bar of a loop of `bars` bars that plays on bar `bar`: loops are locked to the phrases
 * of the bar grid (bar k of an N-bar loop plays on the bars = k mod N, counted from the
 * source's bar 0), so a 2- or 4-bar loop lines up with the band's 2- or 4-bar phrases. */
static int64_t phrase_bar(int64_t bar, int32_t bars)
{
    int64_t k = bar % bars;
    return k < 0 ? k + bars : k;
}

/* Start a loop (the offered clip, a refit, or the current one again) on bar `pos->bar`, `into`
 * frames into it, at the loop bar of that bar's place in its phrase (a clip that arrives or a
 * restart that comes in the middle of a phrase plays from the matching bar). A restart inside
 * a bar (a locate, or JACK's clock jumping) resumes the current clip when there is one: the
 * offered one waits for a bar line. */
static void start_loop(rb_core *core, const rb_position *pos, int32_t line, int64_t into)
{
    rb_player *p = &core->player;
    const rb_loop *next = &p->next;
    int is_new = next->id != 0 && (p->current.id == 0 || (next->serial != p->current.serial && into == 0));
    const rb_loop *loop;
    if (is_new) {
        loop = next;
        core->clips_started++;
    } else {
        loop = take_refit(p);
        if (!loop)
            loop = &p->current;
        if (loop->id == 0)
            return;
        if (p->busy && !p->silent && !p->restart)
            core->late++;
    }
    int64_t bar_in_loop = phrase_bar(pos->bar, loop->bars);
    int64_t offset = bar_frame(loop, bar_in_loop);
    if (into > 0 && pos->frames_per_bar > 0)
        offset += rb_min(rb_round((double)into * loop->frames / loop->bars / pos->frames_per_bar),
                         bar_frame(loop, bar_in_loop + 1) - offset - 1);
    p->restart = 0;
    p->bar_in_loop = (int32_t)bar_in_loop;
    jump(core, loop, offset);
    log_clip_start(core, pos->frame + line, pos->jack_frame + line, pos->bar, &p->current, is_new, into);
}

/* A bar line: a phrase's first bar starts the offered clip or repeats the current one; other
 * bars go on in the current loop (the refit of it when one is waiting). */
static void on_bar_line(rb_core *core, const rb_position *pos, int32_t line)
{
    rb_player *p = &core->player;
    p->bar = pos->bar;
    p->located = 0;
    const rb_loop *loop = &p->current;
    if (loop->id == 0 || p->restart || p->silent || phrase_bar(pos->bar, loop->bars) == 0) {
        start_loop(core, pos, line, 0);
        return;
    }
    p->bar_in_loop = (int32_t)phrase_bar(pos->bar, loop->bars);
    const rb_loop *refit = take_refit(p);
    if (refit) {
        jump(core, refit, bar_frame(refit, p->bar_in_loop));
    } else if (rb_abs((double)(p->cursor - bar_frame(loop, p->bar_in_loop))) > RB_RESYNC_FRAMES) {
        core->resyncs++;
        jump(core, loop, bar_frame(loop, p->bar_in_loop));
    }
}

static void render(rb_core *core, int32_t frames)
{
    rb_player *p = &core->player;
    const rb_position *pos = &core->position;
    if (!pos->rolling) {
        if (!p->silent) {
            begin_fade(p);
            p->silent = 1;
        }
        p->restart = 1;
        p->located = 1; /* the next start may be inside a bar */
    } else if (pos->relocated) {
        p->restart = 1;
        p->located = 1;
    }
    int32_t line = pos->rolling ? pos->bar_offset : -1;
    if (pos->rolling && p->restart && p->located && line != 0 && pos->into > 0) {
        /* a start or locate inside a bar: play from the matching offset, faded in */
        p->bar = line > 0 ? pos->bar - 1 : pos->bar;
        rb_position inside = *pos;
        inside.bar = p->bar;
        start_loop(core, &inside, 0, pos->into);
    }
    if (line < 0) {
        play(core, 0, frames);
    } else {
        play(core, 0, line);
        on_bar_line(core, pos, line);
        play(core, line, frames);
    }
    if (p->current.id == 0 && pos->rolling)
        core->underruns++;
}

/* The block into JACK's buffers with the gain applied, ramped across the block when it changed
 * (one pass: the copy and the gain together). */
static void emit(rb_core *core, int32_t frames, float *restrict out_l, float *restrict out_r)
{
    const float *restrict l = core->block[0], *restrict r = core->block[1];
    float target = core->gain_target, current = core->gain;
    if (target == current) {
        for (int32_t k = 0; k < frames; k++) {
            out_l[k] = l[k] * target;
            out_r[k] = r[k] * target;
        }
        return;
    }
    float step = (target - current) / (float)frames;
    for (int32_t k = 0; k < frames; k++) {
        float g = current + step * (float)(k + 1);
        out_l[k] = l[k] * g;
        out_r[k] = r[k] * g;
    }
    core->gain = target;
}

/* -- the block -------------------------------------------------------------------------------- */

void rb_process(rb_core *core, int32_t frames, int32_t transport_state, const jack_position_t *pos,
                int32_t event_count, int64_t jack_frame, float *out_l, float *out_r,
                const float *in_l, const float *in_r)
{
    if (frames > RB_MAX_BLOCK)
        frames = RB_MAX_BLOCK;
    apply_commands(core);
    read_midi_block(core, event_count, jack_frame, frames);
    locate(core, frames, transport_state, pos, jack_frame);
    render(core, frames);
    emit(core, frames, out_l, out_r);
    if (core->position.rolling && core->position.bar_offset >= 0)
        log_bar_line(core, &core->position);
    if (in_l && in_r)
        capture_input(core, frames, jack_frame, in_l, in_r);
    core->own_frame += frames;
    core->blocks++;
}

/* -- JACK callbacks --------------------------------------------------------------------------- */

static int32_t read_events(rb_core *core, jack_nframes_t nframes)
{
    void *buffer = jack_port_get_buffer(core->midi_in, nframes);
    uint32_t count = jack_midi_get_event_count(buffer);
    int32_t n = 0;
    for (uint32_t k = 0; k < count && n < RB_BLOCK_EVENTS; k++) {
        jack_midi_event_t event;
        if (jack_midi_event_get(&event, buffer, k) != 0)
            continue;
        rb_event *e = &core->events[n++];
        e->offset = (int32_t)event.time;
        e->size = event.size <= 3 ? (int32_t)event.size : 0;
        memcpy(e->data, event.buffer, event.size <= 3 ? event.size : 0);
    }
    return n;
}

static void count_time(rb_core *core, jack_time_t started)
{
    int64_t elapsed = (int64_t)(jack_get_time() - started);
    if (elapsed > core->callback_max_us)
        core->callback_max_us = elapsed;
    core->histogram[elapsed < RB_HIST_BUCKETS ? elapsed : RB_HIST_BUCKETS - 1]++;
}

int rb_jack_process(jack_nframes_t nframes, void *arg)
{
    rb_core *core = (rb_core *)arg;
    jack_time_t started = jack_get_time();
    jack_nframes_t cycle_frame;
    jack_time_t cycle_start, next_cycle;
    float period_usecs;
    if (jack_get_cycle_times(core->client, &cycle_frame, &cycle_start, &next_cycle, &period_usecs) != 0) {
        cycle_frame = jack_last_frame_time(core->client);
        cycle_start = started;
    }
    int64_t delay = started > cycle_start ? (int64_t)((started - cycle_start) * (uint64_t)core->sample_rate / 1000000) : 0;
    if (delay > core->start_delay_max)
        core->start_delay_max = delay;
    jack_position_t pos;
    int32_t state = (int32_t)jack_transport_query(core->client, &pos);
    int32_t events = read_events(core, nframes);
    float *out_l = (float *)jack_port_get_buffer(core->out_l, nframes);
    float *out_r = (float *)jack_port_get_buffer(core->out_r, nframes);
    const float *in_l = core->in_l ? (const float *)jack_port_get_buffer(core->in_l, nframes) : 0;
    const float *in_r = core->in_r ? (const float *)jack_port_get_buffer(core->in_r, nframes) : 0;
    rb_process(core, (int32_t)nframes, state, &pos, events, cycle_frame, out_l, out_r, in_l, in_r);
    if (core->burn_us > 0) {
        /* fault injection (tests): an overrun of our own, on the CPU, as a slow callback would be */
        while ((int64_t)(jack_get_time() - started) < core->burn_us)
            ;
        core->burn_us = 0;
    }
    count_time(core, started);
    return 0;
}

void rb_jack_timebase(jack_transport_state_t state, jack_nframes_t nframes, jack_position_t *pos,
                      int new_pos, void *arg)
{
    (void)state;
    (void)nframes;
    (void)new_pos;
    rb_timebase_fill(&((rb_core *)arg)->timebase, pos, pos->frame);
}

int rb_jack_xrun(void *arg)
{
    ((rb_core *)arg)->xruns++;
    return 0;
}
