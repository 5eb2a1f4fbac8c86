-- riff-bridge from TidalCycles (Tidal 1.7, as Debian ships it, and 1.9). Add this to your
-- BootTidal.hs after the definition of `tidal`, or evaluate it block by block. Tidal sends
-- timestamped bundles (ahead by oLatency); riff-bridge schedules them, so changes land on
-- Tidal's beat. Only events send messages: continuous patterns (saw, sine...) need `segment`.

:{
let riffTarget = Target { oName = "riff-bridge", oAddress = "127.0.0.1", oPort = 9000
                        , oLatency = 0.2, oWindow = Nothing, oSchedule = Pre BundleStamp
                        , oHandshake = False, oBusPort = Nothing }
    -- One OSC shape per parameter: an event sends /riff/set/<name> only when it has that param.
    riffSet name = OSC ("/riff/set/" ++ name) $ ArgList [(name, Nothing)]
    riffShapes = map riffSet ["alpha", "prompt_a", "prompt_b", "seed_a", "seed_b", "denoising",
                              "guidance", "volume"]
             ++ [OSC "/riff/bank/trigger" $ ArgList [("slot", Nothing), ("side", Just $ VS "b")]]
    alpha = pF "alpha"
    denoising = pF "denoising"
    guidance = pF "guidance"
    volume = pF "volume"
    prompt_a = pS "prompt_a"
    prompt_b = pS "prompt_b"
    seed_a = pI "seed_a"
    seed_b = pI "seed_b"
    slot = pI "slot"
    side = pS "side"
    -- Mini-notation has no quoted strings: pattern an index into a list of prompts instead.
    riffPrompts = ["minimal techno kick and hi-hats", "acid techno with a squelchy 303 bassline"]
    promptsA = prompt_a . fmap (riffPrompts !!)
:}

riff <- startStream defaultConfig [(riffTarget, riffShapes)]

-- Morph A -> B over four cycles (16 steps), and swap the B prompt from the bank every two cycles.
streamReplace riff "morph" $ alpha (segment 4 $ slow 4 $ range 0 1 saw) # denoising 0.7

streamReplace riff "bank" $ slow 2 $ slot "<1 2 3 4 5 6 7 8>" # side "b"

-- Prompts are strings: one prompt per cycle, alternating.
streamReplace riff "prompts" $ promptsA "<0 1>"

streamHush riff
