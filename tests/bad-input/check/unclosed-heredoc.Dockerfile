FROM ubuntu
RUN <<EOF
echo never closed
