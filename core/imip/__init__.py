"""What Parley says by mail: iMIP messages, plain notices, their templates and Message-IDs.

Pure: nothing here opens a connection. ``mailagent`` puts the composed bytes on the wire.
"""
