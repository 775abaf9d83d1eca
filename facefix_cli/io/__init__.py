"""Files: finding inputs, reading and decoding them, PNG chunks, hashing, writing outputs."""
