# riff-bridge from Sonic Pi. Sonic Pi receives OSC on port 4560 (Preferences > IO >
# "Allow incoming OSC"), so ask riff-bridge to send its replies there first.

use_osc "localhost", 9000
osc "/riff/reply_port", 4560
osc "/riff/set/prompt_a", "lo-fi hip hop beat, vinyl crackle"
osc "/riff/set/prompt_b", "jazzy rapping from paris"
osc "/riff/set/bpm", 90.0
osc "/riff/set/quantize", "bar"
osc "/riff/listen/bar"

# Every bar from riff-bridge arrives as a cue; move alpha with it.
live_loop :riff_follow do
  bar = sync "/osc*/riff/bar"
  osc "/riff/set/alpha", (bar[0] % 8) / 7.0
end

# Every 16 beats, put a random bank slot on side B and pick a new seed for it.
live_loop :riff_bank do
  osc "/riff/bank/trigger", rrand_i(1, 8), "b"
  osc "/riff/seed/new", "b"
  sleep 16
end

# Errors come back as cues too.
live_loop :riff_errors do
  error = sync "/osc*/riff/error"
  puts "riff-bridge error: #{error[0]} #{error[1]}"
end
