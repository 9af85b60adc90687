"""aiswatch's software AIS receiver: complex samples (RTL-SDR or recording) in, !AIVDM sentences out.

Receive chain: ``iqfile`` (readers) -> ``channelizer`` (channels A and B) -> ``coherent`` (I/Q:
training detector, per-burst derotation, receive filter, timing phases, phase search,
decision-directed phase, soft symbols) or ``gmsk`` + ``timing`` (discriminator audio:
discriminator, offset removal, symbol timing) -> ``hdlc`` (NRZI, flags, destuffing, CRC, soft
repair) -> ``nmea_out``; ``receiver`` composes them, ``decode`` adds
files, pipes, timestamps and the RTL-SDR, ``sources`` feeds the ingest pipeline, ``cli`` is
``aiswatch demod``; ``settings`` says which rates, frequencies, ppm and times they all accept.
Transmit side for tests and benchmarks: ``modulator`` and ``channel``.
"""
