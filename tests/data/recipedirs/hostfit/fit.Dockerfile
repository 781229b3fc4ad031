# Installs a one-line "application" into /opt/fit/bin.
RUN mkdir -p /opt/fit/bin \
 && printf '#!/bin/sh\necho "fit runs here"\n' > /opt/fit/bin/fit \
 && chmod 755 /opt/fit/bin/fit
