"""aiswatch's software AIS receiver: complex samples (RTL-SDR or recording) in, !AIVDM sentences out.

Receive chain, one module per block: ``iqfile`` (readers) -> ``channelizer`` (channels A and B)
-> ``gmsk`` (discriminator, offset removal) -> ``timing`` (symbol timing) -> ``hdlc`` (NRZI,
flags, destuffing, CRC, soft repair) -> ``nmea_out``; ``receiver`` composes them, ``decode`` adds
files, timestamps and the RTL-SDR, ``sources`` feeds the ingest pipeline, ``cli`` is
``aiswatch demod``. Transmit side for tests and benchmarks: ``modulator`` and ``channel``.
"""
