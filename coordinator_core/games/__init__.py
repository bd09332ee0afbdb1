"""The prediction games (Condor Game, Crunch-Synth): what their runners send and expect, as pure functions."""
