# Files of the recipe directory: render puts what COPY names (and only that) into the build context.
COPY share/greeting.txt /opt/files/share/greeting.txt
COPY ["share", "/opt/files/all/"]
