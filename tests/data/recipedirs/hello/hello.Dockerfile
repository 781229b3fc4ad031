# Installs a one-line "application" into /opt/hello/bin.
RUN mkdir -p /opt/hello/bin \
 && printf '#!/bin/sh\necho "${HELLO_GREETING:-Hello}, ${1:-you}"\n' > /opt/hello/bin/hello \
 && chmod 755 /opt/hello/bin/hello
