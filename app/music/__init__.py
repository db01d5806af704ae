"""Music domain: MIDI/music21 sources -> melody tokens (codec) -> the shared sequence core -> .mid/.wav/.png."""
